//! One broadcast node's pusher: takes its queue in order and sends each item over the
//! shared keep-alive HTTP client, retrying what a retry can fix.
//!
//! Each member has its own pusher task, so a slow or dead node only ever delays itself.
//! A request is acknowledged by a 2xx. Connection errors, timeouts, 5xx, 408 and 429 are
//! retried with a short backoff up to the attempt limit; any other 4xx means the node
//! refuses this request (bad token, oversized, malformed) and a retry would only repeat
//! it. A request that fails for good is logged and counted, and the pusher moves on;
//! failures are logged once per run of failures, not once per request, so a dead node
//! does not flood the log before its last will removes it.
//!
//! An LL-HLS part is worth little once stale, and the queue is served in order: it gets at
//! most [`PART_ATTEMPTS`] attempts, and its failures are counted apart from segments'.
//!
//! A control event is signed once per node, just before its first attempt (on the blocking
//! pool: ML-DSA-65 signing is CPU work), with the time of signing in the statement, so an
//! edge can tell a fresh statement from an old one replayed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use certs::signing::SigningKey;
use domain::push_protocol::{
    ControlEvent, InternalPath, PartHeaders, PushToken, SegmentHeaders, STATEMENT_HEADER,
};
use domain::NodeId;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::queue::{NodeQueue, Take};
use super::snapshot::PushItem;
use crate::metrics::IngestMetrics;

/// First retry delay; doubled for each further attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Attempts at most per LL-HLS part: one retry for a dropped keep-alive connection, no
/// more (the next part is already due).
const PART_ATTEMPTS: u32 = 2;
/// Longest part of an error response quoted in the log.
const MAX_QUOTED: usize = 200;

/// A pusher's request to the distributor: "my queue overflowed and has drained; send me
/// the snapshot". `generation` tells a request of a member that has since left or
/// rejoined from one of the current member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncRequest {
    pub(crate) node: NodeId,
    pub(crate) generation: u64,
}

/// How every pusher pushes.
#[derive(Debug, Clone)]
pub(crate) struct PushSettings {
    pub(crate) client: reqwest::Client,
    pub(crate) token: PushToken,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) metrics: IngestMetrics,
    pub(crate) sync_requests: mpsc::UnboundedSender<SyncRequest>,
    /// Signs control events.
    pub(crate) key: Arc<SigningKey>,
}

/// One member's pusher.
#[derive(Debug)]
pub(crate) struct Pusher {
    pub(crate) node: NodeId,
    /// Base URL, without a trailing `/`.
    pub(crate) url: String,
    pub(crate) generation: u64,
    pub(crate) queue: Arc<NodeQueue>,
    pub(crate) settings: PushSettings,
}

/// How one request ended.
enum Outcome {
    Acknowledged,
    /// Worth another attempt; the reason, for the log.
    Retry(String),
    /// Not worth another attempt.
    Refused(String),
}

impl Pusher {
    /// Sends the queue until it is closed and drained, or `cancel` (the member left, or
    /// shutdown).
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut failing = false;
        loop {
            let take = tokio::select! {
                () = cancel.cancelled() => return,
                take = self.queue.next() => take,
            };
            match take {
                Take::Item(item) => {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = self.send(&item, &mut failing) => {}
                    }
                }
                Take::NeedSync => {
                    let request = SyncRequest {
                        node: self.node.clone(),
                        generation: self.generation,
                    };
                    if self.settings.sync_requests.send(request).is_err() {
                        return;
                    }
                }
                Take::Closed => return,
                Take::Empty => {}
            }
        }
    }

    /// Sends one item with retries; never fails (a failure is logged and counted).
    async fn send(&self, item: &PushItem, failing: &mut bool) {
        let started = Instant::now();
        let signed = match item {
            PushItem::Control(event) => match self.sign(event).await {
                Ok(signed) => Some(signed),
                Err(reason) => return self.failed(item, &reason, 0, failing),
            },
            PushItem::Segment { .. } | PushItem::Part(_) => None,
        };
        let attempts = match item {
            PushItem::Part(_) => self.settings.attempts.clamp(1, PART_ATTEMPTS),
            _ => self.settings.attempts.max(1),
        };
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=attempts {
            let reason = match self.attempt(item, signed.as_ref()).await {
                Outcome::Acknowledged => {
                    if let PushItem::Segment { .. } = item {
                        self.settings
                            .metrics
                            .push_acknowledged(&self.node, started.elapsed());
                    }
                    if std::mem::take(failing) {
                        tracing::info!(node = %self.node, "pushes to the node succeed again");
                    }
                    return;
                }
                Outcome::Refused(reason) => {
                    self.failed(item, &reason, attempt, failing);
                    return;
                }
                Outcome::Retry(reason) => reason,
            };
            if attempt == attempts {
                self.failed(item, &reason, attempt, failing);
                return;
            }
            tracing::debug!(node = %self.node, attempt, reason, "push failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn failed(&self, item: &PushItem, reason: &str, attempts: u32, failing: &mut bool) {
        if let PushItem::Part(_) = item {
            self.settings.metrics.part_push_failed(&self.node);
        } else {
            self.settings.metrics.push_failed(&self.node);
        }
        let what = describe(item);
        if std::mem::replace(failing, true) {
            tracing::debug!(node = %self.node, url = %self.url, what, attempts, reason, "push failed");
        } else {
            tracing::warn!(
                node = %self.node,
                url = %self.url,
                what,
                attempts,
                reason,
                "push to a broadcast node failed; further failures are logged at debug level until one succeeds"
            );
        }
    }

    /// `event` as the body of `POST /internal/v1/events`: a signed statement.
    async fn sign(&self, event: &ControlEvent) -> Result<Bytes, String> {
        let body = serde_json::to_vec(event).map_err(|e| format!("event not encoded: {e}"))?;
        let key = Arc::clone(&self.settings.key);
        let issued_at_ms = super::sign::unix_ms();
        tokio::task::spawn_blocking(move || {
            Bytes::from(key.sign_event(body, issued_at_ms).encode())
        })
        .await
        .map_err(|e| format!("signing task failed: {e}"))
    }

    /// One request; `signed` is the signed body of a control event.
    async fn attempt(&self, item: &PushItem, signed: Option<&Bytes>) -> Outcome {
        let s = &self.settings;
        let request = match item {
            PushItem::Control(_) => s
                .client
                .post(format!("{}{}", self.url, InternalPath::Events))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(signed.cloned().unwrap_or_default()),
            PushItem::Segment { held, catch_up } => {
                let meta = &held.segment.meta;
                let path = InternalPath::Segment(
                    meta.stream.clone(),
                    meta.rendition.clone(),
                    meta.sequence,
                );
                let mut request = s
                    .client
                    .put(format!("{}{path}", self.url))
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        content_type(&held.segment.bytes),
                    )
                    .body(held.segment.bytes.clone());
                for (name, value) in SegmentHeaders::of(meta).pairs() {
                    request = request.header(name, value);
                }
                if *catch_up {
                    if let Some(envelope) = held.envelope.get() {
                        request = request.header(STATEMENT_HEADER, hex::encode(envelope));
                    }
                }
                request
            }
            PushItem::Part(part) => {
                let meta = &part.meta;
                let path = InternalPath::Part(
                    meta.stream.clone(),
                    meta.rendition.clone(),
                    meta.sequence,
                    meta.index,
                );
                let mut request = s
                    .client
                    .put(format!("{}{path}", self.url))
                    .header(reqwest::header::CONTENT_TYPE, "video/mp4")
                    .body(part.bytes.clone());
                for (name, value) in PartHeaders::of(meta).pairs() {
                    request = request.header(name, value);
                }
                request
            }
        };
        let response = request
            .bearer_auth(s.token.expose_secret())
            .timeout(s.timeout)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Outcome::Retry("timed out".into()),
            Err(e) => return Outcome::Retry(error_chain(&e)),
        };
        let status = response.status();
        // Read the (short) body in full so the connection goes back to the pool.
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return Outcome::Acknowledged;
        }
        let quoted = String::from_utf8_lossy(&body[..body.len().min(MAX_QUOTED)]).into_owned();
        let reason = format!("HTTP {status}: {quoted}");
        if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Outcome::Retry(reason)
        } else {
            Outcome::Refused(reason)
        }
    }
}

/// What an item is, for the log.
fn describe(item: &PushItem) -> String {
    match item {
        PushItem::Control(event) => format!("{event:?}"),
        PushItem::Segment { held, .. } => {
            let m = &held.segment.meta;
            format!("segment {}/{}/{}", m.stream, m.rendition, m.sequence)
        }
        PushItem::Part(p) => {
            let m = &p.meta;
            format!(
                "part {}/{}/{}.{}",
                m.stream, m.rendition, m.sequence, m.index
            )
        }
    }
}

/// The media type of a segment's bytes: MPEG-TS starts with its sync byte, anything else
/// here is CMAF.
fn content_type(bytes: &[u8]) -> &'static str {
    if bytes.first() == Some(&0x47) {
        "video/mp2t"
    } else {
        "video/mp4"
    }
}

/// A reqwest error with its causes (its `Display` alone says little: "error sending
/// request"). Request URLs are node base URLs, and the token travels in a header, so
/// nothing secret is in it.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
