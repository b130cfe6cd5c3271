//! The S3 backend: objects in a bucket of an S3-compatible store, through the
//! `object_store` crate (`docs/architecture.md`, Archive, says why that client).
//!
//! TLS is rustls on ring, the provider the rest of the tree uses: `object_store`'s HTTP
//! client (reqwest 0.13) is built without a provider of its own, and [`S3::connect`]
//! installs ring as the process's default if none is installed yet. Every request is
//! bounded in time ([`Timeouts`]): a store that is down fails the call as
//! [`ArchiveError::Unavailable`] after at most `retry_for` plus one request's timeout.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

use crate::error::Redactor;
use crate::key::{ArchiveKey, ArchivePrefix};
use crate::local::check_range;
use crate::page::{ListCursor, Page, PageBuilder, MAX_PAGE};
use crate::{ArchiveError, S3Credentials};

/// How a create-only write ([`crate::Archive::put_if_absent`]) is made on this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// A `PUT` with `If-None-Match: *`: the store refuses it if the key exists, so exactly
    /// one of racing writers wins. AWS S3, Cloudflare R2 and MinIO honour it.
    Conditional,
    /// A `HEAD`, then a plain `PUT` if nothing is there: for stores that ignore
    /// `If-None-Match` on writes (Garage 2.5). Writers racing within one round trip may
    /// both write, the last one staying; only for writers whose bytes are the same (every
    /// node archives the same signed segment).
    CheckFirst,
}

/// Time bounds of every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the store.
    pub connect: Duration,
    /// One whole request, body included.
    pub request: Duration,
    /// How long failed requests are retried (with backoff) before the call fails.
    pub retry_for: Duration,
    /// The most retries of one request.
    pub max_retries: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(30),
            retry_for: Duration::from_secs(10),
            max_retries: 3,
        }
    }
}

/// Where the archive's bucket is and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The store's URL (`https://s3.example.net`, `http://127.0.0.1:3900`); `None` for AWS
    /// S3 in [`S3Config::region`]. Plain `http://` is allowed only when named here.
    pub endpoint: Option<String>,
    /// The region (`us-east-1`; Garage's is `garage` unless configured).
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The access key.
    pub credentials: S3Credentials,
    /// How create-only writes are made.
    pub create: CreateMode,
    /// Time bounds.
    pub timeouts: Timeouts,
}

/// A bucket on an S3-compatible store.
#[derive(Clone)]
pub(crate) struct S3 {
    store: Arc<AmazonS3>,
    create: CreateMode,
    /// Scrubs the credentials out of the client's error texts.
    redactor: Redactor,
}

/// Not derived: the client's own `Debug` shows the access key id.
impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("create", &self.create)
            .finish_non_exhaustive()
    }
}

impl S3 {
    /// A client for the bucket. Makes no request.
    pub(crate) fn connect(config: S3Config) -> Result<Self, ArchiveError> {
        // Ignored if a provider is installed already: reqwest uses whichever is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redactor = Redactor::new([
            config.credentials.access_key_id.as_str(),
            config.credentials.secret_access_key.as_str(),
        ]);
        let t = config.timeouts;
        let allow_http = config
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let options = ClientOptions::new()
            .with_connect_timeout(t.connect)
            .with_timeout(t.request)
            .with_allow_http(allow_http);
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: t.max_retries,
            retry_timeout: t.retry_for,
        };
        let mut builder = AmazonS3Builder::new()
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(config.credentials.access_key_id.as_str())
            .with_secret_access_key(config.credentials.secret_access_key.as_str())
            .with_client_options(options)
            .with_retry(retry)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(|e| ArchiveError::Config {
            reason: redactor.scrub(&e.to_string()),
        })?;
        Ok(Self {
            store: Arc::new(store),
            create: config.create,
            redactor,
        })
    }

    fn error(&self, what: &str, e: object_store::Error) -> ArchiveError {
        classify(what, e, &self.redactor)
    }

    pub(crate) async fn put(&self, key: &ArchiveKey, bytes: Bytes) -> Result<(), ArchiveError> {
        self.put_mode(key, bytes, PutMode::Overwrite).await
    }

    async fn put_mode(
        &self,
        key: &ArchiveKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<(), ArchiveError> {
        let what = key.to_string();
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        self.store
            .put_opts(
                &StorePath::from(what.as_str()),
                PutPayload::from(bytes),
                options,
            )
            .await
            .map(drop)
            .map_err(|e| self.error(&what, e))
    }

    pub(crate) async fn put_if_absent(
        &self,
        key: &ArchiveKey,
        bytes: Bytes,
    ) -> Result<(), ArchiveError> {
        if self.create == CreateMode::CheckFirst {
            match self.head(key).await {
                Ok(_) => {
                    return Err(ArchiveError::AlreadyExists {
                        key: key.to_string(),
                    })
                }
                Err(ArchiveError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.put_if_absent_after_head(key, bytes).await
    }

    /// [`S3::put_if_absent`] after the caller's `HEAD` found the key free: check-first
    /// puts at once.
    pub(crate) async fn put_if_absent_after_head(
        &self,
        key: &ArchiveKey,
        bytes: Bytes,
    ) -> Result<(), ArchiveError> {
        match self.create {
            CreateMode::Conditional => self.put_conditional(key, bytes).await,
            CreateMode::CheckFirst => self.put(key, bytes).await,
        }
    }

    /// A `PUT` with `If-None-Match: *`, whatever [`CreateMode`] says.
    pub(crate) async fn put_conditional(
        &self,
        key: &ArchiveKey,
        bytes: Bytes,
    ) -> Result<(), ArchiveError> {
        self.put_mode(key, bytes, PutMode::Create).await
    }

    pub(crate) async fn get(&self, key: &ArchiveKey, limit: u64) -> Result<Bytes, ArchiveError> {
        let what = key.to_string();
        let result = self
            .store
            .get_opts(&StorePath::from(what.as_str()), GetOptions::default())
            .await
            .map_err(|e| self.error(&what, e))?;
        if result.meta.size > limit {
            return Err(ArchiveError::TooLarge { key: what, limit });
        }
        let mut bytes = BytesMut::with_capacity(usize::try_from(result.meta.size).unwrap_or(0));
        let mut body = result.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.error(&what, e))?;
            // The declared size is the store's word; the cap holds whatever arrives.
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(ArchiveError::TooLarge { key: what, limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    }

    pub(crate) async fn get_range(
        &self,
        key: &ArchiveKey,
        range: Range<u64>,
    ) -> Result<Bytes, ArchiveError> {
        let what = key.to_string();
        if range.start >= range.end {
            return check_range(&what, &range, 0).map(|()| Bytes::new());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&StorePath::from(what.as_str()), options)
            .await
            .map_err(|e| self.error(&what, e))?;
        // A range past the end comes back cut short: refused, as the local backend does.
        check_range(&what, &range, result.meta.size)?;
        let len = range.end - range.start;
        let mut bytes = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut body = result.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.error(&what, e))?;
            if (bytes.len() + chunk.len()) as u64 > len {
                return Err(ArchiveError::TooLarge {
                    key: what,
                    limit: len,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    }

    pub(crate) async fn head(&self, key: &ArchiveKey) -> Result<u64, ArchiveError> {
        let what = key.to_string();
        self.store
            .head(&StorePath::from(what.as_str()))
            .await
            .map(|meta| meta.size)
            .map_err(|e| self.error(&what, e))
    }

    pub(crate) async fn list(
        &self,
        prefix: &ArchivePrefix,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        let what = prefix.to_string();
        let folder = StorePath::from(what.as_str());
        let mut listing = match after {
            Some(cursor) => self
                .store
                .list_with_offset(Some(&folder), &StorePath::from(cursor.as_str())),
            None => self.store.list(Some(&folder)),
        };
        let mut page = PageBuilder::new(limit);
        // The stream asks the store for the next 1,000 only when these run out; dropping it
        // when the page is full makes no further request.
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.error(&what, e))?;
            if !page.offer(meta.location.as_ref(), meta.size) {
                break;
            }
        }
        Ok(page.finish())
    }

    pub(crate) async fn delete_prefix(&self, prefix: &ArchivePrefix) -> Result<u64, ArchiveError> {
        let what = prefix.to_string();
        let folder = StorePath::from(what.as_str());
        let mut deleted = 0;
        loop {
            // Everything under the folder goes, ours or not: it is the archive's folder.
            let batch: Vec<StorePath> = self
                .store
                .list(Some(&folder))
                .take(MAX_PAGE)
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(|e| self.error(&what, e))?;
            if batch.is_empty() {
                return Ok(deleted);
            }
            let n = batch.len() as u64;
            let locations = futures::stream::iter(batch.into_iter().map(Ok)).boxed();
            self.store
                .delete_stream(locations)
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| self.error(&what, e))?;
            deleted += n;
        }
    }
}

/// What an `object_store` error means for the caller. `object_store` maps 404, 409, 412,
/// 401 and 403 to variants of their own; anything else is `Generic`, whose cause says
/// whether the request never got an answer (a connection refused or reset, a timeout:
/// unavailable) or got a status (5xx and 429: unavailable; other 4xx: refused).
fn classify(what: &str, e: object_store::Error, redactor: &Redactor) -> ArchiveError {
    use object_store::Error as E;
    let key = what.to_owned();
    let reason = redactor.scrub(&e.to_string());
    match e {
        E::NotFound { .. } => ArchiveError::NotFound { key },
        E::AlreadyExists { .. } | E::Precondition { .. } => ArchiveError::AlreadyExists { key },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            ArchiveError::Refused { key, reason }
        }
        E::Generic { ref source, .. } => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(c) = cause {
                if c.downcast_ref::<object_store::client::HttpError>()
                    .is_some()
                {
                    return ArchiveError::Unavailable { key, reason };
                }
                cause = c.source();
            }
            match status_in(&reason) {
                Some(s) if s >= 500 || s == 429 => ArchiveError::Unavailable { key, reason },
                _ => ArchiveError::Refused { key, reason },
            }
        }
        _ => ArchiveError::Refused { key, reason },
    }
}

/// The HTTP status in an `object_store` retry error's text (`... status code: 503 ...`):
/// the type that holds it as a number is private to that crate.
fn status_in(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_status_in_a_retry_error() {
        assert_eq!(
            status_in("Error performing PUT http://x in 1s - Server returned non-2xx status code: 503 Service Unavailable: "),
            Some(503)
        );
        assert_eq!(status_in("connection refused"), None);
        assert_eq!(status_in("status code: 5"), None);
    }
}
