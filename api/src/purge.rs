//! [`CachePurge`]: tells the shared caches in front of the cluster to drop what they hold of
//! a stream that turned private or a recording that was deleted (issue 45 item 7).
//!
//! A cache keeps a public answer for as long as its origin allowed (two minutes at most
//! with `deploy/varnish/sealcast.vcl`), and would go on serving it without a token after
//! the stream turned private. So the API sends every configured cache a `BAN` of the
//! stream's trees (`/live/NAME/`, `/vod/NAME/`), or of one recording's (`/vod/NAME/ID/`),
//! the moment it changes the catalog, and once more [`AGAIN_AFTER`] later: a live stream's
//! nodes learn of its privacy from its ingest within a second or two, and an answer a
//! node gave as public meanwhile may have been stored again.
//!
//! A cache that does not answer is logged and counted as failed; the change itself stands
//! (the caches' TTL cap is the bound then).

use std::time::Duration;

use domain::paths::{recording_tree_prefix, stream_tree_prefixes};
use domain::{SessionId, StreamName};
use tokio_util::task::TaskTracker;

use crate::ApiError;

/// Longest wait for one cache's answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// When the second `BAN` goes: after a live stream's privacy has reached its nodes.
pub const AGAIN_AFTER: Duration = Duration::from_secs(5);

/// The caches to tell, and the second round of `BAN`s in flight.
#[derive(Debug, Clone)]
pub struct CachePurge {
    client: reqwest::Client,
    /// Base URLs (`http://varnish:6081`), without a trailing slash.
    caches: Vec<String>,
    again: TaskTracker,
}

impl CachePurge {
    /// Purges `caches` (`http://HOST[:PORT]` base URLs). Refuses anything else: a path, a
    /// query or credentials in the URL would be sent nowhere sensible.
    pub fn new(caches: &[String]) -> Result<Self, ApiError> {
        let mut bases = Vec::new();
        for cache in caches {
            let url = reqwest::Url::parse(cache).map_err(|_| bad(cache))?;
            let plain = matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none();
            if !plain {
                return Err(bad(cache));
            }
            bases.push(url.as_str().trim_end_matches('/').to_owned());
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::BadRequest(format!("a client for the caches: {e}")))?;
        Ok(CachePurge {
            client,
            caches: bases,
            again: TaskTracker::new(),
        })
    }

    /// Drops everything the caches hold of `stream` (it turned private, or was removed).
    pub async fn stream(&self, stream: &StreamName) {
        self.twice(stream_tree_prefixes(stream).to_vec()).await;
    }

    /// Drops what the caches hold of one recording of `stream` (it was deleted).
    pub async fn recording(&self, stream: &StreamName, id: &SessionId) {
        self.twice(vec![recording_tree_prefix(stream, id)]).await;
    }

    /// Waits for the second rounds under way.
    pub async fn close(&self) {
        self.again.close();
        self.again.wait().await;
    }

    async fn twice(&self, prefixes: Vec<String>) {
        self.ban(&prefixes).await;
        let again = self.clone();
        self.again.spawn(async move {
            tokio::time::sleep(AGAIN_AFTER).await;
            again.ban(&prefixes).await;
        });
    }

    /// `BAN {cache}{prefix}` to every cache for every prefix, at once; failures logged.
    /// Answers how many failed.
    pub async fn ban(&self, prefixes: &[String]) -> usize {
        let method = reqwest::Method::from_bytes(b"BAN").unwrap_or(reqwest::Method::DELETE);
        let mut sends = tokio::task::JoinSet::new();
        for cache in &self.caches {
            for prefix in prefixes {
                let request = self
                    .client
                    .request(method.clone(), format!("{cache}{prefix}"));
                let (cache, prefix) = (cache.clone(), prefix.clone());
                sends.spawn(async move { (cache, prefix, request.send().await) });
            }
        }
        let mut failed = 0;
        while let Some(done) = sends.join_next().await {
            let Ok((cache, prefix, answer)) = done else {
                failed += 1;
                continue;
            };
            match answer {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(%cache, %prefix, "cache purged");
                }
                Ok(r) => {
                    failed += 1;
                    let status = r.status().as_u16();
                    tracing::warn!(%cache, %prefix, status, "a cache refused to purge");
                }
                Err(e) => {
                    failed += 1;
                    let error = e.without_url();
                    tracing::warn!(%cache, %prefix, %error, "a cache could not be told to purge");
                }
            }
        }
        failed
    }
}

fn bad(_cache: &str) -> ApiError {
    // Not echoed: a URL with credentials in it is exactly what is refused here.
    ApiError::BadRequest(
        "a cache purge URL is http://HOST[:PORT] (or https), with no path, query or credentials"
            .to_owned(),
    )
}
