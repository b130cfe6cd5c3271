//! [`Hook`]: an operator's HTTP endpoint asked before something happens, as SRS and
//! MediaMTX users know them: `on_publish` (an ingest asks before it accepts a publish) and
//! `on_play` (a node asks at the first use of a private stream's playback token).
//!
//! A hook gets a JSON `POST`; any 2xx answer allows, anything else refuses. It must answer
//! within its timeout (2 s by default); a hook that fails or times out refuses too
//! (fail-closed), unless it was configured to fail open. Where a hook may point follows
//! the webhooks' rules ([`Destinations`]): a URL naming a loopback, private, link-local or
//! otherwise non-public address is refused when the hook is configured, and a name is
//! resolved to public addresses only, at every connection (so DNS gains nothing), unless
//! private destinations are allowed (`--allow-private-hooks`, a switch apart from the
//! admin API's webhooks' `--allow-private-webhooks`). Redirects are not
//! followed and no proxy is used. The URL may carry the operator's own secret: it is never
//! logged, only the hook's name.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::webhooks::{is_public, literal_ip, PublicOnly};
use crate::{ApiError, Destinations};

/// How long a hook may take by default.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a hook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Refused, with a reason for the log (never the URL).
    Refused(String),
}

impl Verdict {
    /// Whether it allows.
    pub fn allows(&self) -> bool {
        matches!(self, Verdict::Allowed)
    }
}

/// An operator's hook endpoint.
#[derive(Clone)]
pub struct Hook {
    name: &'static str,
    url: String,
    timeout: Duration,
    fail_open: bool,
    client: reqwest::Client,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry the operator's secret.
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl Hook {
    /// The hook `name` (`on_publish`, `on_play`) at `url`, answering within `timeout`;
    /// `fail_open` allows when it cannot be asked. Refused: a URL that is not `http(s)://`
    /// with a host, or that names a non-public address while only public ones are allowed.
    pub fn new(
        name: &'static str,
        url: &str,
        timeout: Duration,
        fail_open: bool,
        destinations: Destinations,
    ) -> Result<Self, ApiError> {
        let bad = |reason: &str| ApiError::BadHook {
            name,
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad("not an http:// or https:// URL with a host"));
        }
        if timeout.is_zero() {
            return Err(bad("its timeout is zero"));
        }
        if destinations == Destinations::Public && literal_ip(url).is_some_and(|ip| !is_public(ip))
        {
            return Err(bad(
                "it names a loopback, private or link-local address (allow with --allow-private-hooks)",
            ));
        }
        let mut builder = reqwest::Client::builder();
        if destinations == Destinations::Public {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sealcast/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| bad("the HTTP client could not be made"))?;
        Ok(Hook {
            name,
            url: url.to_owned(),
            timeout,
            fail_open,
            client,
        })
    }

    /// Its name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Asks the hook about `body`: allowed on a 2xx, refused otherwise; a hook that cannot
    /// be asked (refused connection, timeout, non-public address) refuses unless it fails
    /// open.
    pub async fn ask<T: Serialize + ?Sized>(&self, body: &T) -> Verdict {
        match self.try_ask(body).await {
            Ok(verdict) => verdict,
            Err(failure) => self.failed(&failure),
        }
    }

    /// Asks the hook about `body`: its answer, or why it could not be asked (for
    /// [`Hook::failed`]; a caller that remembers answers must not remember a failure).
    pub async fn try_ask<T: Serialize + ?Sized>(&self, body: &T) -> Result<Verdict, HookFailure> {
        let sent = self.client.post(&self.url).json(body).send();
        let failure = match tokio::time::timeout(self.timeout, sent).await {
            Ok(Ok(r)) if r.status().is_success() => return Ok(Verdict::Allowed),
            Ok(Ok(r)) => {
                return Ok(Verdict::Refused(format!(
                    "{} answered {}",
                    self.name,
                    r.status()
                )))
            }
            Ok(Err(e)) if e.is_timeout() => "timed out",
            Ok(Err(e)) if e.is_connect() => "could not connect (refused, or no public address)",
            Ok(Err(_)) => "failed",
            Err(_) => "timed out",
        };
        Err(HookFailure(failure))
    }

    /// The verdict of the hook's failure mode when it could not be asked (logged).
    pub fn failed(&self, failure: &HookFailure) -> Verdict {
        let failure = failure.0;
        if self.fail_open {
            tracing::warn!(
                hook = self.name,
                "the {} hook {failure}; allowed (fail-open)",
                self.name
            );
            Verdict::Allowed
        } else {
            tracing::warn!(
                hook = self.name,
                "the {} hook {failure}; refused (fail-closed)",
                self.name
            );
            Verdict::Refused(format!("the {} hook {failure}", self.name))
        }
    }
}

/// Why a hook could not be asked (never its URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookFailure(&'static str);

impl std::fmt::Display for HookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;

    async fn receiver(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}")
    }

    #[test]
    fn private_and_odd_urls_are_refused_when_configured() {
        let t = DEFAULT_HOOK_TIMEOUT;
        for url in [
            "http://127.0.0.1:9/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://2130706433/",
        ] {
            let err = Hook::new("on_publish", url, t, false, Destinations::Public).expect_err(url);
            assert!(err.to_string().contains("on_publish"), "{err}");
            assert!(
                !err.to_string().contains(url),
                "the URL is not echoed: {err}"
            );
            assert!(Hook::new("on_publish", url, t, false, Destinations::Any).is_ok());
        }
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "not a url",
            "http://",
        ] {
            assert!(
                Hook::new("on_play", url, t, false, Destinations::Any).is_err(),
                "{url}"
            );
        }
        assert!(Hook::new(
            "on_play",
            "https://hooks.example.com/x",
            t,
            false,
            Destinations::Public
        )
        .is_ok());
    }

    #[tokio::test]
    async fn a_2xx_allows_anything_else_refuses_and_a_hang_times_out() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new()
            .route(
                "/yes",
                post(move |body: String| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    assert!(body.contains("\"stream\":\"s\""), "{body}");
                    async { StatusCode::NO_CONTENT }
                }),
            )
            .route("/no", post(|| async { StatusCode::FORBIDDEN }))
            .route(
                "/hang",
                post(|| async {
                    std::future::pending::<()>().await;
                    StatusCode::OK
                }),
            );
        let base = receiver(app).await;
        let body = serde_json::json!({ "stream": "s" });
        let t = Duration::from_millis(300);
        let hook = |path: &str, open| {
            Hook::new(
                "on_publish",
                &format!("{base}{path}"),
                t,
                open,
                Destinations::Any,
            )
            .expect("hook")
        };
        assert_eq!(hook("/yes", false).ask(&body).await, Verdict::Allowed);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(
            !hook("/no", true).ask(&body).await.allows(),
            "a refusal is no failure"
        );
        let started = std::time::Instant::now();
        let hung = hook("/hang", false).ask(&body).await;
        assert!(!hung.allows());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(hook("/hang", true).ask(&body).await.allows(), "fail-open");
        // Only public addresses: a name resolving to loopback reaches nothing.
        let by_name = base.replace("127.0.0.1", "localhost");
        let public = Hook::new(
            "on_play",
            &format!("{by_name}/yes"),
            t,
            false,
            Destinations::Public,
        )
        .expect("a name is left to the resolver");
        assert!(!public.ask(&body).await.allows());
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}
