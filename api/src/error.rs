//! [`ApiError`], the crate's one error type, and its mapping to HTTP answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::{CatalogError, ErrorKind};

/// Why an API request failed. Each variant maps to one status; the JSON body says what went
/// wrong in one sentence and never carries internal detail (database errors are logged,
/// not shown).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No `x-api-key` header, or a key nobody issued.
    #[error("a valid API key is required in x-api-key")]
    Unauthorized,
    /// The key is valid but its scope does not allow this route.
    #[error("this API key is read-only; the route needs an admin key")]
    Forbidden,
    /// The body or a parameter is not what the route takes.
    #[error("{0}")]
    BadRequest(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// This node was started without a catalog, so catalog routes cannot answer.
    #[error("this node has no catalog; start it with --database-url or --data-dir")]
    NoCatalog,
    /// The catalog failed (logged with its detail; the client only learns that it failed).
    #[error("the catalog is unavailable")]
    Catalog(#[source] CatalogError),
    /// This node has no playback key, so it cannot mint tokens.
    #[error("this node has no playback key (keys/playback-key); it cannot mint tokens")]
    NoPlaybackKey,
    /// Too many wrong API keys from this address lately: try again later.
    #[error("too many failed attempts from this address; retry later")]
    TooManyAttempts {
        /// Seconds until the address may try again.
        retry_after: u64,
    },
    /// A hook (`on_publish`, `on_play`) that cannot be used as configured. Never carries
    /// the URL, which may hold the operator's secret.
    #[error("the {name} hook: {reason}")]
    BadHook {
        /// `on_publish` or `on_play`.
        name: &'static str,
        /// Why, in a few words.
        reason: String,
    },
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e.kind() {
            ErrorKind::InvalidInput => ApiError::BadRequest(e.to_string()),
            ErrorKind::NotFound => ApiError::NotFound(e.to_string()),
            ErrorKind::Conflict => ApiError::Conflict(e.to_string()),
            // Storage, and whatever kind a later catalog adds: the server's problem, shown
            // to the client as such.
            _ => ApiError::Catalog(e),
        }
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NoCatalog | ApiError::Catalog(_) | ApiError::NoPlaybackKey => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            // Configuration, not a request: never answered, but mapped all the same.
            ApiError::BadHook { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Catalog(e) = &self {
            tracing::error!(error = %e, "an API request failed in the catalog");
        }
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        let mut response = (self.status(), body).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let ApiError::TooManyAttempts { retry_after } = &self {
            if let Ok(v) = HeaderValue::try_from(retry_after.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(self, ApiError::Unauthorized) {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("ApiKey header=\"x-api-key\""),
            );
        }
        response
    }
}
