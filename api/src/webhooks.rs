//! [`Webhooks`]: tells the URLs registered in the catalog about publishes, unpublishes and
//! finished recordings, retrying with backoff until they answer 2xx.
//!
//! Each event is sent by exactly one process in the cluster: the one whose catalog write
//! recorded it (`start_session`, `end_session` and `add_recording` say whether this call
//! was the one that changed the row), so several broadcast nodes finishing the same
//! recording cause one delivery, not one per node.

use std::time::Duration;

use catalog::{Catalog, WebhookEvent, WebhookRecord};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Waits before the retries of a delivery: 1, 2, 4, 8 and 16 seconds (six attempts).
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a webhook receives, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookPayload {
    /// `publish`, `unpublish` or `recording_ready`.
    pub event: WebhookEvent,
    /// The stream.
    pub stream: String,
    /// The publish session (the recording's id for `recording_ready`).
    pub session: String,
    /// When it happened (unix seconds).
    pub at: i64,
    /// The node that recorded the event.
    pub node: String,
    /// The VOD master playlist (`recording_ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_url: Option<String>,
}

/// Delivers webhooks in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct Webhooks {
    catalog: Catalog,
    client: reqwest::Client,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Webhooks {
    /// Deliveries for the webhooks of `catalog`. Fails only if the HTTP client cannot be
    /// made (its TLS setup, say the system's root certificates, failed).
    pub fn new(catalog: Catalog) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            // A receiver's redirect is not followed: where a notification goes is the
            // operator's choice, made when the webhook was registered.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sealcast/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhooks {
            catalog,
            client,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        })
    }

    /// Sends `payload` to every webhook subscribed to its event, in the background.
    pub fn notify(&self, payload: WebhookPayload) {
        let this = self.clone();
        self.tasks.spawn(async move {
            let hooks = match this.catalog.webhooks_for(payload.event).await {
                Ok(hooks) => hooks,
                Err(e) => {
                    tracing::warn!(error = %e, event = %payload.event, "could not read the webhooks; this event is not delivered");
                    return;
                }
            };
            let body = match serde_json::to_vec(&payload) {
                Ok(body) => body,
                Err(_) => return,
            };
            for hook in hooks {
                let this2 = this.clone();
                let body = body.clone();
                this.tasks
                    .spawn(async move { this2.deliver(hook, body, payload.event).await });
            }
        });
    }

    async fn deliver(&self, hook: WebhookRecord, body: Vec<u8>, event: WebhookEvent) {
        for attempt in 0..=BACKOFF.len() {
            let sent = self
                .client
                .post(&hook.url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send();
            let outcome = tokio::select! {
                () = self.stop.cancelled() => return,
                outcome = sent => outcome,
            };
            let why = match outcome {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(webhook = hook.id, %event, "webhook delivered");
                    return;
                }
                Ok(r) => format!("answered {}", r.status()),
                Err(e) if e.is_timeout() => "timed out".to_owned(),
                Err(e) if e.is_connect() => "refused the connection".to_owned(),
                Err(_) => "failed".to_owned(),
            };
            let Some(wait) = BACKOFF.get(attempt) else {
                // The URL is the operator's own and may carry a token in its query: log
                // the webhook's id, not its URL.
                tracing::warn!(webhook = hook.id, %event, attempts = attempt + 1, "webhook {why}; giving up");
                return;
            };
            tracing::debug!(webhook = hook.id, %event, "webhook {why}; retrying");
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(*wait) => {}
            }
        }
    }

    /// Stops retrying and waits for deliveries under way (on shutdown).
    pub async fn close(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
