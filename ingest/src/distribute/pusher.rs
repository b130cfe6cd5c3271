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
//! A CMAF segment whose every part this node took ([`PartLedger`]) is pushed without its
//! bytes ([`Assemble`]: the node joins the parts it holds, and the segment's statement
//! over MQTT still gates it); if the node answers that it misses a part
//! ([`is_parts_missing`]), the segment is pushed whole at once, in the same attempt.
//! Catch-up pushes, segments without parts, and every segment under
//! [`PushSettings::whole_segments`] go whole.
//!
//! A control event is signed once per node, just before its first attempt (on the blocking
//! pool: ML-DSA-65 signing is CPU work), with the time of signing in the statement, so an
//! edge can tell a fresh statement from an old one replayed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use certs::signing::SigningKey;
use domain::push_protocol::{
    is_parts_missing, Assemble, ControlEvent, InternalPath, PartHeaders, PushToken, SegmentHeaders,
    STATEMENT_HEADER,
};
use domain::NodeId;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ledger::PartLedger;
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
    /// Push every segment whole, never bodiless (`SEALCAST_PUSH_WHOLE_SEGMENTS`, a
    /// diagnostic: the benchmark compares both forms in one run).
    pub(crate) whole_segments: bool,
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
    /// The parts this node took, for the form of the segments that follow them.
    pub(crate) ledger: PartLedger,
}

/// How one request ended.
enum Outcome {
    Acknowledged,
    /// A bodiless segment push the node could not assemble: push the bytes.
    PartsMissing,
    /// Worth another attempt; the reason, for the log.
    Retry(String),
    /// Not worth another attempt.
    Refused(String),
}

impl Pusher {
    /// Sends the queue until it is closed and drained, or `cancel` (the member left, or
    /// shutdown).
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
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
    async fn send(&mut self, item: &PushItem, failing: &mut bool) {
        let started = Instant::now();
        let signed = match item {
            PushItem::Control(event) => match self.sign(event).await {
                Ok(signed) => Some(signed),
                Err(reason) => return self.failed(item, &reason, 0, failing),
            },
            PushItem::Segment { .. } | PushItem::Part(_) | PushItem::Thumbnail(_) => None,
        };
        let mut form = match item {
            PushItem::Segment { held, catch_up } => {
                let s = &held.segment;
                // The parts cover the segment but its own VSI, which the push carries.
                let prefix = domain::c2pa::vsi::segment_prefix(&s.bytes).len();
                let form = self.ledger.segment(&s.meta, s.bytes.len() - prefix);
                form.filter(|_| !catch_up && !self.settings.whole_segments)
            }
            _ => None,
        };
        let attempts = match item {
            PushItem::Part(_) | PushItem::Thumbnail(_) => {
                self.settings.attempts.clamp(1, PART_ATTEMPTS)
            }
            _ => self.settings.attempts.max(1),
        };
        let mut fell_back = false;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=attempts {
            let mut outcome = self.attempt(item, signed.as_ref(), form).await;
            if let (Outcome::PartsMissing, Some(_)) = (&outcome, form) {
                // The node misses a part: the bytes, at once.
                (form, fell_back) = (None, true);
                outcome = self.attempt(item, signed.as_ref(), None).await;
            }
            let reason = match outcome {
                Outcome::Acknowledged => {
                    self.acknowledged(item, form, fell_back, started);
                    if std::mem::take(failing) {
                        tracing::info!(node = %self.node, "pushes to the node succeed again");
                    }
                    return;
                }
                Outcome::PartsMissing => {
                    let reason = "answered parts_missing to a push with a body";
                    self.failed(item, reason, attempt, failing);
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

    /// `item` was acknowledged (a segment in `form`, after a fallback or not).
    fn acknowledged(
        &mut self,
        item: &PushItem,
        form: Option<Assemble>,
        fell_back: bool,
        started: Instant,
    ) {
        let metrics = &self.settings.metrics;
        match item {
            PushItem::Segment { .. } => {
                metrics.push_acknowledged(&self.node, started.elapsed());
                let form = match (form, fell_back) {
                    (Some(_), _) => "assembled",
                    (None, true) => "fallback",
                    (None, false) => "whole",
                };
                metrics.segment_pushed(&self.node, form);
            }
            PushItem::Part(part) => self.ledger.part(&part.meta, part.bytes.len(), true),
            PushItem::Control(_) | PushItem::Thumbnail(_) => {}
        }
    }

    fn failed(&mut self, item: &PushItem, reason: &str, attempts: u32, failing: &mut bool) {
        if let PushItem::Part(part) = item {
            self.ledger.part(&part.meta, part.bytes.len(), false);
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
        let issued_at_ms = domain::time::WallClock.unix_ms();
        tokio::task::spawn_blocking(move || {
            Bytes::from(key.sign_event(body, issued_at_ms).encode())
        })
        .await
        .map_err(|e| format!("signing task failed: {e}"))
    }

    /// One request; `signed` is the signed body of a control event, `form` the bodiless
    /// form of a segment push.
    async fn attempt(
        &self,
        item: &PushItem,
        signed: Option<&Bytes>,
        form: Option<Assemble>,
    ) -> Outcome {
        let s = &self.settings;
        let (kind, body) = match (item, form) {
            (PushItem::Control(_), _) => ("event", signed.cloned().unwrap_or_default()),
            (PushItem::Segment { held, .. }, Some(_)) => {
                let bytes = &held.segment.bytes;
                let prefix = domain::c2pa::vsi::segment_prefix(bytes);
                ("segment", bytes.slice_ref(prefix))
            }
            (PushItem::Segment { held, .. }, None) => ("segment", held.segment.bytes.clone()),
            (PushItem::Part(part), _) => ("part", part.bytes.clone()),
            (PushItem::Thumbnail(t), _) => ("thumbnail", t.thumbnail.bytes.clone()),
        };
        s.metrics.pushed(&self.node, kind, body.len());
        let request = match item {
            PushItem::Control(_) => s
                .client
                .post(format!("{}{}", self.url, InternalPath::Events))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body),
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
                    .body(body);
                for (name, value) in SegmentHeaders::of(meta).pairs() {
                    request = request.header(name, value);
                }
                if let Some(form) = form {
                    let (name, value) = form.pair();
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
                    .body(body);
                for (name, value) in PartHeaders::of(meta).pairs() {
                    request = request.header(name, value);
                }
                request
            }
            // Its statement is its only metadata, and rides along: edges verify it before
            // they keep the picture.
            PushItem::Thumbnail(t) => {
                let path = InternalPath::Thumbnail(t.thumbnail.meta.stream.clone());
                s.client
                    .put(format!("{}{path}", self.url))
                    .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
                    .header(STATEMENT_HEADER, hex::encode(&t.envelope))
                    .body(body)
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
        if is_parts_missing(status.as_u16(), &body) {
            return Outcome::PartsMissing;
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
        PushItem::Thumbnail(t) => {
            let m = &t.thumbnail.meta;
            format!("thumbnail {}/{}", m.stream, m.sequence)
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
