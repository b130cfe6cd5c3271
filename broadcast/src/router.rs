//! The HTTP side of a node: the public URL layout of `domain::paths` (live playlists and
//! segments from the current snapshots, recordings from disk, the embedded web front end),
//! on an edge also the internal push API (`edge::intake`), plus the cross-cutting layers every
//! response goes through (node header, CORS, request metrics).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::paths::{MediaFile, PublicPath};
use domain::push_protocol::InternalPath;
use domain::{ClientGroup, StreamName};
use http::StatusCode;

use crate::recording::VodFile;
use crate::respond::{self, Ranges, MP4_TYPE, PLAYLIST_TYPE, SEGMENT_TYPE, STATEMENT_TYPE};
use crate::view::{Document, ENDED_MAX_AGE, SEGMENT_CACHE_CONTROL};
use crate::{assets, BroadcastError, Node};

/// The header naming the node that answered; the load balancer passes it through.
pub const NODE_HEADER: HeaderName = HeaderName::from_static("x-sealcast-node");

/// `Cache-Control` of answers that describe the moment (stream list, health, metrics).
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// The router a node is served with: the public routes, with `extra` routes (an edge's
/// push API, the admin API) beside them, all under the layer every response gets, so every
/// response, errors and CORS preflights included, carries `x-sealcast-node`. Its one
/// caller is [`crate::Edge::router`]: every node that is served is an edge, tests included.
pub(crate) fn router(node: Arc<Node>, extra: Router) -> Router {
    let mut routes = Router::new()
        .route(&PublicPath::Health.to_string(), get(health))
        .route(&PublicPath::Readiness.to_string(), get(readiness))
        .route(&PublicPath::Metrics.to_string(), get(metrics))
        .route(&PublicPath::Streams.to_string(), get(streams))
        .route(&PublicPath::Recordings.to_string(), get(recordings))
        // The live and VOD trees are parsed by `PublicPath`, the one parser of the layout,
        // which refuses `..`, empty segments and invalid names before any lookup (or any
        // file name is made).
        // A private stream's trees need its playback token first (`access`), whatever
        // the handler behind would answer.
        .route(
            "/live/{*rest}",
            get(crate::live_tree::live).layer(middleware::from_fn_with_state(
                Arc::clone(&node),
                crate::access_guard::guard,
            )),
        )
        .route(
            "/vod/{*rest}",
            get(vod).layer(middleware::from_fn_with_state(
                Arc::clone(&node),
                crate::access_guard::guard,
            )),
        );
    // The pages and their assets: a fixed set of paths, one route each.
    for path in assets::paths() {
        let spelled = path.to_string();
        routes = routes.route(
            &spelled,
            get(
                move |State(node): State<Arc<Node>>, headers: HeaderMap| async move {
                    assets::respond(&path, &headers, &node.pages().policy)
                },
            ),
        );
    }
    routes = routes.route(&PublicPath::MoqEndpoint.to_string(), get(moq_endpoint));
    let app: Router = routes
        .fallback(not_found)
        .with_state(Arc::clone(&node))
        .merge(extra);
    // One layer for what every response gets (node header, CORS, request count): each
    // layer is a boxed future per request, and a playlist answer costs little more.
    // No per-request tracing span either: the access log is the load balancer's, and
    // errors are logged where they happen.
    app.layer(middleware::from_fn_with_state(node, every_response))
}

/// A node's routes as one service, the way its HTTP server answers with them: a `GET`
/// under `/live/` straight to the live tree (through the same layers, without the
/// router's per-request machinery), everything else through the router. What
/// [`crate::Edge::service`] gives, so that tests drive what production serves.
#[derive(Clone)]
pub struct NodeRoutes {
    app: Router,
    node: Arc<Node>,
}

impl std::fmt::Debug for NodeRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRoutes")
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl NodeRoutes {
    pub(crate) fn new(app: Router, node: Arc<Node>) -> Self {
        NodeRoutes { app, node }
    }

    /// The answer to `request`.
    pub(crate) async fn answer(self, request: Request) -> Response {
        if takes_live_direct(&request) {
            return live_direct(self.node, request).await;
        }
        match tower::ServiceExt::oneshot(self.app, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

impl tower::Service<Request> for NodeRoutes {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let routes = self.clone();
        Box::pin(async move { Ok(routes.answer(request).await) })
    }
}

/// The live tree without the router, for a `GET` under `/live/` ([`takes_live_direct`]):
/// the same steps the router takes it through (what every response gets, the private
/// streams' guard, [`crate::live_tree::live`]), without the route lookup, the path
/// parameters and the boxed future of each layer, which cost an LL-HLS request more than
/// its answer (bench/llhls-node-notes.md).
async fn live_direct(node: Arc<Node>, request: Request) -> Response {
    let node = &node;
    let mut response = with_every_response(node, request, |request| {
        crate::access_guard::guarded(node, request, |request| async move {
            crate::live_tree::live(State(Arc::clone(node)), request)
                .await
                .into_response()
        })
    })
    .await;
    // As the router's routes do last: the length of a body whose size is known.
    let exact = axum::body::HttpBody::size_hint(response.body()).exact();
    if let Some(length) = exact.filter(|_| !response.headers().contains_key(header::CONTENT_LENGTH))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

/// Whether a request goes to [`live_direct`]: a `GET` of a path under `/live/`, which
/// the router would send to the live tree with the same layers. (`HEAD` stays with the
/// router, which answers it without the body.)
fn takes_live_direct<B>(request: &http::Request<B>) -> bool {
    request.method() == Method::GET && request.uri().path().starts_with("/live/")
}

/// A file of a finished recording, read from the archive (through the node's cache) or
/// from disk off the executor. Playlists are cached
/// a minute (they no longer change, but a recording can be deleted), segments forever (the
/// bytes that were served live, under the same `ETag`), and each file's signed statement
/// (`.sig`) as long as its file, without `x-sealcast-verified` (it is not media).
async fn vod(State(node): State<Arc<Node>>, request: Request) -> Result<Response, BroadcastError> {
    let headers = request.headers();
    let path = PublicPath::parse(request.uri().path()).ok_or(BroadcastError::NotFound)?;
    let (stream, id) = match &path {
        PublicPath::VodMaster(s, id)
        | PublicPath::VodMedia(s, id, _)
        | PublicPath::VodInit(s, id, _)
        | PublicPath::VodFragment(s, id, _, _)
        | PublicPath::VodSegment(s, id, _, _)
        | PublicPath::VodSignature(s, id, _, _)
        | PublicPath::VodThumbnail(s, id)
        | PublicPath::VodThumbnailSignature(s, id) => (s.clone(), *id),
        _ => return Err(BroadcastError::NotFound),
    };
    // The archive when the node has one (any node serves any recording), else its disk.
    let file = match (node.shelf(), node.library()) {
        (Some(shelf), _) => shelf.read(&path).await?,
        (None, Some(library)) => library.read(&path).await?,
        (None, None) => VodFile::NoRecording,
    };
    let bytes = match file {
        VodFile::Found(bytes) => bytes,
        VodFile::NoRecording => return Err(BroadcastError::UnknownRecording { stream, id }),
        VodFile::NoFile => {
            return Err(match path {
                PublicPath::VodSegment(_, _, rendition, sequence)
                | PublicPath::VodFragment(_, _, rendition, sequence) => {
                    BroadcastError::UnknownSegment {
                        stream,
                        rendition,
                        sequence,
                    }
                }
                PublicPath::VodMedia(_, _, rendition) | PublicPath::VodInit(_, _, rendition) => {
                    BroadcastError::UnknownRendition { stream, rendition }
                }
                _ => BroadcastError::UnknownRecording { stream, id },
            })
        }
    };
    match path {
        PublicPath::VodSegment(_, id, _, sequence) => {
            let doc = Document::segment(id, sequence, bytes);
            respond::verified(respond::document(
                &doc,
                SEGMENT_TYPE,
                Ranges::Bytes,
                headers,
            )?)
        }
        PublicPath::VodFragment(_, id, _, sequence) => {
            let doc = Document::segment(id, sequence, bytes);
            respond::verified(respond::document(&doc, MP4_TYPE, Ranges::Bytes, headers)?)
        }
        PublicPath::VodInit(..) => {
            let doc = Document::init(bytes, ENDED_MAX_AGE);
            respond::verified(respond::document(&doc, MP4_TYPE, Ranges::Bytes, headers)?)
        }
        PublicPath::VodThumbnail(..) | PublicPath::VodThumbnailSignature(..) => {
            crate::thumbnails::vod_response(&path, bytes, headers)
        }
        PublicPath::VodSignature(_, _, _, media) => {
            let cache_control = match media {
                MediaFile::Init => {
                    HeaderValue::try_from(format!("public, max-age={ENDED_MAX_AGE}"))
                        .unwrap_or(NO_CACHE)
                }
                _ => SEGMENT_CACHE_CONTROL,
            };
            let doc = Document::statement(bytes, cache_control);
            respond::document(&doc, STATEMENT_TYPE, Ranges::No, headers)
        }
        _ => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let doc = Document::playlist(text, ENDED_MAX_AGE);
            respond::document(&doc, PLAYLIST_TYPE, Ranges::No, headers)
        }
    }
}

/// Finished recordings on this node's disk, newest first.
/// `/moq/v1/endpoint`: where viewers reach the streams over MoQ; 404 when nowhere.
async fn moq_endpoint(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Result<Response, BroadcastError> {
    let document = node
        .pages()
        .moq_endpoint
        .as_ref()
        .ok_or(BroadcastError::NotFound)?;
    let json = HeaderValue::from_static("application/json");
    crate::respond::document(document, json, crate::respond::Ranges::No, &headers)
}

async fn recordings(State(node): State<Arc<Node>>) -> Result<Response, BroadcastError> {
    let list = match (node.shelf(), node.library()) {
        (Some(shelf), _) => shelf.list().await?,
        (None, Some(library)) => library.list().await?,
        (None, None) => Arc::from([]),
    };
    // Private recordings, and those of a stream private now, are not listed.
    let listed: Vec<&crate::RecordingInfo> = list
        .iter()
        .filter(|r| !r.private && !node.is_private(&r.stream))
        .collect();
    Ok(([(header::CACHE_CONTROL, NO_CACHE)], Json(listed)).into_response())
}

async fn streams(State(node): State<Arc<Node>>) -> Response {
    (
        [(header::CACHE_CONTROL, NO_CACHE)],
        Json(node.public_streams()),
    )
        .into_response()
}

async fn health() -> Response {
    ([(header::CACHE_CONTROL, NO_CACHE)], "ok").into_response()
}

/// 200 once the node is ready for viewers (`ready`, or `behind` while it is more than a
/// segment behind live), 503 before (`joining`) and once it shuts down (`draining`;
/// `/healthz` is liveness only).
async fn readiness(State(node): State<Arc<Node>>) -> Response {
    let (ready, body) = match (node.is_ready(), node.is_behind(), node.is_draining()) {
        (_, _, true) => (false, "draining"),
        (false, _, _) => (false, "joining"),
        (true, false, _) => (true, "ready"),
        (true, true, _) => (true, "behind"),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CACHE_CONTROL, NO_CACHE)], body).into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Result<Response, BroadcastError> {
    node.metrics
        .set_viewers(&node.load(std::time::Instant::now()).viewers);
    let text = node.metrics.encode()?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            ),
            (header::CACHE_CONTROL, NO_CACHE),
        ],
        text,
    )
        .into_response())
}

async fn not_found() -> BroadcastError {
    BroadcastError::NotFound
}

/// Headers a browser player may read from a cross-origin response.
const EXPOSED: HeaderValue =
    HeaderValue::from_static("content-length, content-range, x-sealcast-node, x-sealcast-verified");
/// What a cross-origin player may send (preflight answer).
const ALLOWED_METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");
const ALLOWED_HEADERS: HeaderValue = HeaderValue::from_static("range, if-none-match");
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("86400");

/// What every response gets: `x-sealcast-node`, CORS (any origin may play: the content is
/// public; credentials are never involved), and a count by route and status. The route
/// label comes from the URL layout, never from the raw path, so junk requests cannot grow
/// the label set. CORS preflights are answered here.
async fn every_response(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    with_every_response(&node, request, |request| next.run(request)).await
}

/// What [`every_response`] does around `inner`.
async fn with_every_response<F, Fut>(node: &Node, request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let route = route_label(request.uri().path());
    // Who would be a viewer, noted only once the request was answered (below).
    let viewer = match route {
        "master" | "media" => viewer_of(node, &request),
        _ => None,
    };
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS);
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
        r
    } else {
        inner(request).await
    };
    if let Some((stream, client)) = viewer {
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            node.audience
                .seen(&stream, client, std::time::Instant::now());
        }
    }
    let h = response.headers_mut();
    h.insert(NODE_HEADER, node.id_header().clone());
    // On every response, whether or not the request said where it came from: the answer
    // is then the same for everyone, and a shared cache needs no `Vary: Origin`.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
    node.metrics.http_request(route, response.status().as_u16());
    // Bodies here are whole documents, so their size is known before they are sent.
    let sent = axum::body::HttpBody::size_hint(response.body()).exact();
    if let Some(n) = sent.filter(|n| *n > 0) {
        node.audience.sent(n);
        node.metrics.response_bytes(n);
    }
    response
}

/// The stream and the client of a live playlist request: a viewer of it, if it is
/// answered. The client as the private streams' guard sees it (the peer, or the address
/// a trusted load balancer forwarded), grouped as every per-client cap is.
fn viewer_of(node: &Node, request: &Request) -> Option<(StreamName, ClientGroup)> {
    let stream = match PublicPath::parse(request.uri().path()) {
        Some(
            PublicPath::Master(s)
            | PublicPath::Media(s, _)
            | PublicPath::DvrMaster(s)
            | PublicPath::DvrMedia(s, _),
        ) => s,
        _ => return None,
    };
    let client = node.access().client(request)?;
    Some((stream, ClientGroup::of(client)))
}

/// The metrics label of a request: one of a fixed set of route names.
fn route_label(path: &str) -> &'static str {
    // The live tree by shape alone (no second parse of the names on the hot path); a
    // malformed path under it is labelled by its shape and answered 404.
    if let Some(rest) = path.strip_prefix("/live/") {
        return if rest.ends_with(".sig") {
            "signature"
        } else if rest.ends_with(".partkey") {
            "part_key"
        } else if rest.ends_with("/dvr.m3u8") {
            "dvr"
        } else if rest.ends_with("/master.m3u8") {
            "master"
        } else if rest.ends_with("/index.m3u8") {
            "media"
        } else if rest.ends_with(".ts") {
            "segment"
        } else if let Some(stem) = rest.strip_suffix(".m4s") {
            // `{seq}.{part}.m4s` is a part, `{seq}.m4s` a segment.
            if stem
                .rsplit('/')
                .next()
                .is_some_and(|file| file.contains('.'))
            {
                "part"
            } else {
                "segment"
            }
        } else if rest.ends_with("/init.mp4") {
            "init"
        } else if rest.ends_with("/thumbnail.jpg") {
            "thumbnail"
        } else {
            "unmatched"
        };
    }
    if let Some(internal) = InternalPath::parse(path) {
        return match internal {
            InternalPath::Segment(..) => "push_segment",
            InternalPath::Part(..) => "push_part",
            InternalPath::Events => "push_event",
            InternalPath::Thumbnail(..) => "push_thumbnail",
        };
    }
    match PublicPath::parse(path) {
        Some(PublicPath::Index) => "index",
        Some(PublicPath::Dashboard) => "dashboard",
        Some(PublicPath::Publish) => "publish",
        // An ingest's (the load balancer sends them there); a node answers 404.
        Some(PublicPath::WhipEndpoint(..) | PublicPath::WhipSession(..)) => "whip",
        Some(PublicPath::Asset(..)) => "asset",
        Some(PublicPath::Master(..)) => "master",
        Some(PublicPath::Media(..)) => "media",
        Some(PublicPath::DvrMaster(..) | PublicPath::DvrMedia(..)) => "dvr",
        Some(PublicPath::Segment(..) | PublicPath::Fragment(..)) => "segment",
        Some(PublicPath::Part(..)) => "part",
        Some(PublicPath::Init(..)) => "init",
        Some(PublicPath::VodInit(..)) => "vod_init",
        Some(PublicPath::VodMaster(..)) => "vod_master",
        Some(PublicPath::VodMedia(..)) => "vod_media",
        Some(PublicPath::VodSegment(..) | PublicPath::VodFragment(..)) => "vod_segment",
        Some(PublicPath::Streams) => "streams",
        Some(PublicPath::Recordings) => "recordings",
        Some(PublicPath::Health) => "healthz",
        Some(PublicPath::Readiness) => "readyz",
        Some(PublicPath::Metrics) => "metrics",
        Some(PublicPath::Signature(..) | PublicPath::VodSignature(..)) => "signature",
        Some(PublicPath::PartKey(..)) => "part_key",
        Some(PublicPath::TrustRoot | PublicPath::TrustBundle | PublicPath::ProvenanceAnchors) => {
            "trust"
        }
        Some(PublicPath::MoqEndpoint | PublicPath::MoqGrant(..)) => "moq",
        Some(
            PublicPath::Thumbnail(..)
            | PublicPath::ThumbnailSignature(..)
            | PublicPath::VodThumbnail(..)
            | PublicPath::VodThumbnailSignature(..),
        ) => "thumbnail",
        None if path.starts_with("/api/") => "api",
        None => "unmatched",
    }
}
