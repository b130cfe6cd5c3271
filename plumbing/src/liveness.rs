//! Liveness that tells the truth: a role is alive while every one of its listener tasks
//! (RTMP, SRT, WebRTC, WHIP, HTTP) is running.
//!
//! Each listener task holds a [`ListenerGuard`] for as long as it serves. A guard dropped
//! while its listener's own stop token has not fired — the task returned, failed, or
//! panicked (a guard is dropped on unwind too) — marks the role dead: `/healthz`
//! ([`Liveness::healthz`]) answers `503` with a short JSON body naming the listener, and
//! [`Liveness::died`] wakes the role's `main`, which stops and exits non-zero, so that
//! Docker's `restart:` policy and Kubernetes restart the process (plain Docker does not
//! restart a container for being unhealthy). A guard dropped after its stop token fired is
//! a clean shutdown and changes nothing.
//!
//! For the end-to-end test of that path, `SEALCAST_FAILPOINT=listener:NAME` makes the
//! listener `NAME` panic right after it started ([`ListenerGuard::failpoint`]); nothing
//! else reads the variable.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The environment variable of the listener failpoint (tests only).
pub const FAILPOINT_VAR: &str = "SEALCAST_FAILPOINT";

/// The listeners of one role process and which of them died; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Liveness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The listeners that stopped unasked, in the order they did.
    dead: Mutex<Vec<&'static str>>,
    /// Ticks once per death, for [`Liveness::died`].
    deaths: watch::Sender<usize>,
}

impl Inner {
    /// The dead listeners (a panic elsewhere while the lock was held loses nothing here).
    fn dead(&self) -> MutexGuard<'_, Vec<&'static str>> {
        self.dead
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new()
    }
}

impl Liveness {
    /// A role with no listener dead yet.
    pub fn new() -> Self {
        Liveness {
            inner: Arc::new(Inner {
                dead: Mutex::new(Vec::new()),
                deaths: watch::Sender::new(0),
            }),
        }
    }

    /// The guard listener `name`'s task holds while it serves; `stop` is that listener's
    /// own shutdown signal: once it fired, the task ending is no death.
    pub fn guard(&self, name: &'static str, stop: &CancellationToken) -> ListenerGuard {
        ListenerGuard {
            name,
            stop: stop.clone(),
            liveness: self.clone(),
        }
    }

    /// The listeners that stopped unasked, first first.
    pub fn dead(&self) -> Vec<&'static str> {
        self.inner.dead().clone()
    }

    /// Whether every listener is running.
    pub fn is_alive(&self) -> bool {
        self.inner.dead().is_empty()
    }

    /// Waits until a listener has stopped unasked (at once if one did already); its name.
    pub async fn died(&self) -> &'static str {
        let mut deaths = self.inner.deaths.subscribe();
        loop {
            let first = self.inner.dead().first().copied();
            if let Some(first) = first {
                return first;
            }
            if deaths.changed().await.is_err() {
                // The sender lives in `self`: not reached.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The answer of `GET /healthz`: `200 ok` while every listener runs, else `503` with
    /// `{"error": "a listener stopped", "dead": [NAME, …]}`.
    pub fn healthz(&self) -> Response {
        let dead = self.dead();
        if dead.is_empty() {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "ok\n",
            )
                .into_response();
        }
        // The names are this code's own identifiers (ASCII letters), nothing to escape.
        let names: Vec<String> = dead.iter().map(|name| format!("\"{name}\"")).collect();
        let body = format!(
            "{{\"error\":\"a listener stopped\",\"dead\":[{}]}}\n",
            names.join(",")
        );
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    }

    fn record(&self, name: &'static str) {
        self.inner.dead().push(name);
        self.inner.deaths.send_modify(|n| *n += 1);
    }
}

/// Held by a listener task while it serves; see the module's doc.
#[derive(Debug)]
#[must_use = "a listener is alive only while its guard is held"]
pub struct ListenerGuard {
    name: &'static str,
    stop: CancellationToken,
    liveness: Liveness,
}

impl ListenerGuard {
    /// The test failpoint: panics when `SEALCAST_FAILPOINT` is `listener:NAME` for this
    /// guard's listener (its task then dies as a real fault would kill it).
    #[allow(clippy::panic)] // a failpoint a test asked for by name
    pub fn failpoint(&self) {
        let Ok(value) = std::env::var(FAILPOINT_VAR) else {
            return;
        };
        if value.strip_prefix("listener:") == Some(self.name) {
            panic!(
                "failpoint {FAILPOINT_VAR}={value}: the {} listener dies",
                self.name
            );
        }
    }
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if self.stop.is_cancelled() {
            return;
        }
        tracing::error!(
            listener = self.name,
            "a listener task stopped unasked; liveness fails"
        );
        self.liveness.record(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guard_dropped_unasked_is_a_death_and_a_stopped_one_is_not() {
        let live = Liveness::new();
        let stop = CancellationToken::new();
        let rtmp = live.guard("rtmp", &stop);
        let srt = live.guard("srt", &CancellationToken::new());
        assert!(live.is_alive());
        assert_eq!(live.healthz().status(), StatusCode::OK);
        stop.cancel();
        drop(rtmp);
        assert!(live.is_alive());
        drop(srt);
        assert_eq!(live.dead(), vec!["srt"]);
        assert_eq!(live.died().await, "srt");
        let answer = live.healthz();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            String::from_utf8_lossy(&body),
            "{\"error\":\"a listener stopped\",\"dead\":[\"srt\"]}\n"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_is_a_death_and_wakes_the_waiter() {
        let live = Liveness::new();
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.died().await })
        };
        let guard = live.guard("whip", &CancellationToken::new());
        let task = tokio::spawn(async move {
            let _guard = guard;
            panic!("a listener bug");
        });
        assert!(task.await.is_err());
        assert_eq!(waiter.await.ok(), Some("whip"));
        assert!(!live.is_alive());
    }
}
