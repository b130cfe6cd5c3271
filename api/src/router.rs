//! [`router`]: the `/api/v1` routes of docs/api.md that need the catalog or the cluster
//! view (the public `/api/v1/streams` and `/api/v1/recordings` are the broadcast node's
//! own). Every route takes an [`Authorized`] of its scope first, so the `x-api-key` is
//! checked before anything else and a request without a valid key learns nothing, not even
//! whether its body was well formed. Wrong keys back off per client address
//! ([`KeyStrikes`]): after a few, the address is answered 429 for a while without a look
//! at its key.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use catalog::{ApiKeyRecord, Catalog, Scope, WebhookEvent};
use certs::tokens::{ClientNetwork, PlaybackKey};
use domain::StreamName;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::purge::CachePurge;
use crate::strikes::{self, KeyStrikes};
use crate::tokens::{self, TokenRequest};
use crate::{ApiError, ClusterView};

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Largest request body the API reads; every body it takes is a few fields.
const BODY_LIMIT: usize = 64 * 1024;
/// Most sessions `/api/v1/sessions` lists.
const SESSIONS_LIMIT: u32 = 100;

/// Deletes one recording's files from this node (the broadcast node's
/// `forget_recording`): stream and recording id in, done when the files are gone.
pub type ForgetRecording = Arc<
    dyn Fn(StreamName, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// What the routes share; cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` on a node started without one: catalog routes answer 503.
    catalog: Option<Catalog>,
    cluster: Arc<Mutex<ClusterView>>,
    forget_recording: Option<ForgetRecording>,
    /// Mints playback tokens; `None`: the token route answers 503.
    playback: Option<PlaybackKey>,
    strikes: Arc<KeyStrikes>,
    /// The shared caches in front, told to drop a stream that turns private and a deleted
    /// recording; `None`: no cache to tell.
    purge: Option<CachePurge>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("catalog", &self.inner.catalog)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API over `catalog` and `cluster`; `forget_recording` removes a recording's
    /// files on this node when one is deleted.
    pub fn new(
        catalog: Option<Catalog>,
        cluster: Arc<Mutex<ClusterView>>,
        forget_recording: Option<ForgetRecording>,
    ) -> Self {
        Api {
            inner: Arc::new(Inner {
                catalog,
                cluster,
                forget_recording,
                playback: None,
                strikes: Arc::new(KeyStrikes::default()),
                purge: None,
            }),
        }
    }

    /// Mints playback tokens under `key` (`POST /api/v1/streams/{name}/tokens`).
    pub fn with_playback_key(self, key: PlaybackKey) -> Self {
        let inner = &self.inner;
        Api {
            inner: Arc::new(Inner {
                catalog: inner.catalog.clone(),
                cluster: Arc::clone(&inner.cluster),
                forget_recording: inner.forget_recording.clone(),
                playback: Some(key),
                strikes: Arc::clone(&inner.strikes),
                purge: inner.purge.clone(),
            }),
        }
    }

    /// Tells the caches of `purge` what no longer may be served from them (issue 45).
    pub fn with_cache_purge(self, purge: CachePurge) -> Self {
        let inner = &self.inner;
        Api {
            inner: Arc::new(Inner {
                catalog: inner.catalog.clone(),
                cluster: Arc::clone(&inner.cluster),
                forget_recording: inner.forget_recording.clone(),
                playback: inner.playback.clone(),
                strikes: Arc::clone(&inner.strikes),
                purge: Some(purge),
            }),
        }
    }

    /// The caches' purger, to wait for its second rounds when stopping.
    pub fn cache_purge(&self) -> Option<&CachePurge> {
        self.inner.purge.as_ref()
    }

    fn catalog(&self) -> Result<&Catalog, ApiError> {
        self.inner.catalog.as_ref().ok_or(ApiError::NoCatalog)
    }

    /// Checks the request's key against the catalog and `required`; an address that
    /// presented too many wrong keys lately is refused first, without a look at its key.
    async fn authorize(&self, parts: &Parts, required: Scope) -> Result<ApiKeyRecord, ApiError> {
        let catalog = self.catalog()?;
        let client = strikes::client(parts);
        if let Some(client) = client {
            if let Err(wait) = self.inner.strikes.check(client) {
                return Err(ApiError::TooManyAttempts {
                    retry_after: strikes::retry_after(wait),
                });
            }
        }
        let presented = presented_key(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let Some(key) = catalog.authenticate_api_key(presented).await? else {
            if let Some(client) = client {
                self.inner.strikes.failed(client);
            }
            return Err(ApiError::Unauthorized);
        };
        if let Some(client) = client {
            self.inner.strikes.succeeded(client);
        }
        if key.scope.allows(required) {
            Ok(key)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The `x-api-key` header, if there is one.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok())
}

/// The scope a route requires, as a type: [`Read`] or [`Admin`].
pub(crate) trait Required {
    /// The scope.
    const SCOPE: Scope;
}

/// Routes that read the catalog or the cluster view.
#[derive(Debug)]
pub(crate) struct Read;
impl Required for Read {
    const SCOPE: Scope = Scope::Read;
}

/// Routes that change something.
#[derive(Debug)]
pub(crate) struct Admin;
impl Required for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// A request whose `x-api-key` grants scope `S`. Every route takes it as its first
/// argument, so the key is checked before anything else of the request (path, query,
/// body) is looked at; a request without a good key learns nothing more.
#[derive(Debug)]
pub(crate) struct Authorized<S>(std::marker::PhantomData<S>);

impl<S: Required + Send + Sync> FromRequestParts<Api> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        api.authorize(parts, S::SCOPE).await?;
        Ok(Authorized(std::marker::PhantomData))
    }
}

/// The routes, with their state.
pub fn router(api: Api) -> Router {
    Router::new()
        .route(
            "/api/v1/catalog/streams",
            get(list_streams).post(create_stream),
        )
        .route(
            "/api/v1/catalog/streams/{name}",
            get(get_stream).patch(update_stream).delete(delete_stream),
        )
        .route(
            "/api/v1/catalog/streams/{name}/rotate-key",
            post(rotate_key),
        )
        .route("/api/v1/streams/{name}/tokens", post(mint_token))
        .route("/api/v1/live", get(live))
        .route("/api/v1/live/{name}/end", post(end_live))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/recordings/{stream}/{id}", delete(delete_recording))
        .route("/api/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/api/v1/webhooks/{id}", delete(delete_webhook))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// A JSON answer that no cache keeps.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut response = (status, Json(value)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn stream_name(name: &str) -> Result<StreamName, ApiError> {
    StreamName::new(name).map_err(|e| ApiError::BadRequest(format!("invalid stream name: {e}")))
}

/// The body, or a 400 that says what was wrong with it.
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    parsed
        .map(|Json(v)| v)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {}", e.body_text())))
}

async fn list_streams(
    _key: Authorized<Read>,
    State(api): State<Api>,
) -> Result<Response, ApiError> {
    let streams = api.catalog()?.list_streams().await?;
    Ok(json(StatusCode::OK, &streams))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStream {
    name: String,
    /// Served only with a playback token.
    #[serde(default)]
    private: bool,
    /// Kept in a recording by the nodes that record (the default).
    #[serde(default = "recorded")]
    record: bool,
}

/// A new stream is recorded unless its body says otherwise.
fn recorded() -> bool {
    true
}

#[derive(Serialize)]
struct StreamWithKey<'a> {
    name: &'a StreamName,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<bool>,
    key: &'a str,
}

async fn create_stream(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    parsed: Result<Json<NewStream>, JsonRejection>,
) -> Result<Response, ApiError> {
    let new = body(parsed)?;
    let name = stream_name(&new.name)?;
    let (record, key) = api
        .catalog()?
        .add_stream_with(&name, new.private, new.record)
        .await?;
    let answer = StreamWithKey {
        name: &record.name,
        created_at: Some(record.created_at),
        private: Some(record.private),
        record: Some(record.record),
        key: key.expose_secret(),
    };
    Ok(json(StatusCode::CREATED, &answer))
}

async fn get_stream(
    _key: Authorized<Read>,
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let record = api
        .catalog()?
        .get_stream(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stream named {name}")))?;
    Ok(json(StatusCode::OK, &record))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamUpdate {
    /// Served only with a playback token, or to anyone.
    private: Option<bool>,
    /// Kept in a recording, or served live only.
    record: Option<bool>,
}

/// Changes what may change of a stream (its privacy, its recording); answers the stream.
/// A live stream follows within a second or two (its ingest reads the catalog every
/// second).
async fn update_stream(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path(name): Path<String>,
    parsed: Result<Json<StreamUpdate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let update = body(parsed)?;
    let name = stream_name(&name)?;
    let catalog = api.catalog()?;
    if let Some(private) = update.private {
        catalog.set_private(&name, private).await?;
        if let (true, Some(purge)) = (private, &api.inner.purge) {
            purge.stream(&name).await;
        }
    }
    if let Some(record) = update.record {
        catalog.set_record(&name, record).await?;
    }
    let record = catalog
        .get_stream(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stream named {name}")))?;
    Ok(json(StatusCode::OK, &record))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// Seconds the token is valid.
    ttl: u64,
    /// The client network it is bound to (`203.0.113.0/24`, one address).
    #[serde(default)]
    ip: Option<String>,
    /// Whether it opens the stream's recordings too.
    #[serde(default)]
    recordings: bool,
}

/// Mints a playback token for a stream of the catalog; answers the token, its id and
/// expiry, and the player link (relative to the player's origin).
async fn mint_token(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path(name): Path<String>,
    parsed: Result<Json<NewToken>, JsonRejection>,
) -> Result<Response, ApiError> {
    let new = body(parsed)?;
    let name = stream_name(&name)?;
    let key = api.inner.playback.as_ref().ok_or(ApiError::NoPlaybackKey)?;
    let ip = new
        .ip
        .as_deref()
        .map(|ip| {
            ip.parse::<ClientNetwork>()
                .map_err(|_| ApiError::BadRequest("ip: not an address or a network".into()))
        })
        .transpose()?;
    if api.catalog()?.get_stream(&name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no stream named {name}")));
    }
    let request = TokenRequest {
        stream: name,
        ttl: std::time::Duration::from_secs(new.ttl),
        ip,
        recordings: new.recordings,
    };
    let now = domain::time::WallClock.unix_secs();
    let minted = tokens::mint(key, &request, now).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "ttl: between 1 and {} seconds",
            tokens::MAX_TOKEN_TTL.as_secs()
        ))
    })?;
    tracing::info!(stream = %request.stream, id = %minted.id, "playback token minted");
    Ok(json(StatusCode::CREATED, &minted))
}

async fn delete_stream(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    api.catalog()?.remove_stream(&name).await?;
    if let Some(purge) = &api.inner.purge {
        purge.stream(&name).await;
    }
    Ok(no_content())
}

async fn rotate_key(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let key = api.catalog()?.rotate_key(&name).await?;
    let answer = StreamWithKey {
        name: &name,
        created_at: None,
        private: None,
        record: None,
        key: key.expose_secret(),
    };
    Ok(json(StatusCode::OK, &answer))
}

async fn live(_key: Authorized<Read>, State(api): State<Api>) -> Result<Response, ApiError> {
    let live = api.inner.cluster.lock().live(Instant::now());
    Ok(json(StatusCode::OK, &live))
}

async fn end_live(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    if !api.catalog()?.request_end(&name).await? {
        return Err(ApiError::NotFound(format!("stream {name} is not live")));
    }
    tracing::info!(stream = %name, "ending the live session at an operator's request");
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "stream": name, "ending": true }),
    ))
}

async fn nodes(_key: Authorized<Read>, State(api): State<Api>) -> Result<Response, ApiError> {
    let nodes = api.inner.cluster.lock().nodes(Instant::now());
    Ok(json(StatusCode::OK, &nodes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsQuery {
    stream: Option<String>,
}

async fn sessions(
    _key: Authorized<Read>,
    State(api): State<Api>,
    query: Result<Query<SessionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let stream = query.stream.as_deref().map(stream_name).transpose()?;
    let sessions = api
        .catalog()?
        .list_sessions(stream.as_ref(), SESSIONS_LIMIT)
        .await?;
    Ok(json(StatusCode::OK, &sessions))
}

async fn delete_recording(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path((stream, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let stream = stream_name(&stream)?;
    api.catalog()?.remove_recording(&stream, &id).await?;
    if let (Some(purge), Ok(session)) = (&api.inner.purge, id.parse::<domain::SessionId>()) {
        purge.recording(&stream, &session).await;
    }
    if let Some(forget) = &api.inner.forget_recording {
        forget(stream, id).await;
    }
    Ok(no_content())
}

/// Admin only: a webhook URL is where the operator's notifications go and may carry a
/// token in its query, so read keys never see it.
async fn list_webhooks(
    _key: Authorized<Admin>,
    State(api): State<Api>,
) -> Result<Response, ApiError> {
    let hooks = api.catalog()?.list_webhooks().await?;
    Ok(json(StatusCode::OK, &hooks))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    #[serde(default)]
    events: Vec<WebhookEvent>,
}

async fn create_webhook(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    parsed: Result<Json<NewWebhook>, JsonRejection>,
) -> Result<Response, ApiError> {
    let new = body(parsed)?;
    let hook = api.catalog()?.add_webhook(&new.url, &new.events).await?;
    Ok(json(StatusCode::CREATED, &hook))
}

async fn delete_webhook(
    _key: Authorized<Admin>,
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("a webhook id is a number".into()))?;
    api.catalog()?.remove_webhook(id).await?;
    Ok(no_content())
}
