//! Webhooks: URLs told about publishes, unpublishes and finished recordings.
//!
//! The catalog only keeps the subscriptions; delivery is the API crate's. A URL is checked
//! when it is added, with the same parser (`url`, WHATWG rules) the HTTP client will send it
//! with, and stored in that parser's normal form, so what is listed is exactly what is
//! called. Webhook URLs often carry the receiver's secret token in their path or query, so
//! they are never logged (only the host) and errors never repeat them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::catalog::{now_unix, with_pool};
use crate::columns::{join_list, parse_name_of, split_list};
use crate::{sql, Catalog, CatalogError};

/// Longest webhook URL accepted, in bytes: far beyond any real receiver's, short of what
/// would make a row or a log line unwieldy.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;

/// How many times [`Catalog::add_webhook`] tries to insert when a concurrent add took the
/// id it computed. Webhooks are added by hand; more simultaneous adds than this is not a
/// real workload.
const INSERT_ATTEMPTS: usize = 16;

/// What a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A publish session started.
    Publish,
    /// A publish session ended.
    Unpublish,
    /// A recording became available as video on demand.
    RecordingReady,
}

impl WebhookEvent {
    /// Every event, in the order they happen to a stream.
    pub const ALL: [WebhookEvent; 3] = [
        WebhookEvent::Publish,
        WebhookEvent::Unpublish,
        WebhookEvent::RecordingReady,
    ];

    /// The event's name as stored and as the API spells it (`publish`, `unpublish`,
    /// `recording_ready`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Publish => "publish",
            WebhookEvent::Unpublish => "unpublish",
            WebhookEvent::RecordingReady => "recording_ready",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEvent {
    type Err = CatalogError;

    /// Parses an event's name, exactly as [`WebhookEvent::as_str`] spells it.
    fn from_str(s: &str) -> Result<Self, CatalogError> {
        parse_name_of(&WebhookEvent::ALL, WebhookEvent::as_str, "webhook event", s)
    }
}

/// One webhook, as `GET /api/v1/webhooks` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    /// The webhook's id, to remove it by; small and increasing.
    pub id: i64,
    /// Where events are `POST`ed, in normal form.
    pub url: String,
    /// The events it is told about, each once, in [`WebhookEvent::ALL`] order.
    pub events: Vec<WebhookEvent>,
    /// When it was added, in unix seconds.
    pub created_at: i64,
}

/// A `webhooks` row as read, before its events are parsed.
#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    url: String,
    events: String,
    created_at: i64,
}

impl WebhookRow {
    fn into_record(self) -> Result<WebhookRecord, CatalogError> {
        let events = split_list(&self.events)
            .map(|name| {
                name.parse()
                    .map_err(|e: CatalogError| CatalogError::InvalidRow {
                        column: "events",
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebhookRecord {
            id: self.id,
            url: self.url,
            events,
            created_at: self.created_at,
        })
    }
}

/// Checks a webhook URL and returns its normal form; see [`Catalog::add_webhook`].
fn check_url(url: &str) -> Result<Url, CatalogError> {
    let invalid = |reason: String| CatalogError::InvalidWebhook { reason };
    let too_long = || {
        invalid(format!(
            "the URL is longer than {MAX_WEBHOOK_URL_LEN} bytes"
        ))
    };
    // Before parsing, so a huge body is not parsed at all.
    if url.len() > MAX_WEBHOOK_URL_LEN {
        return Err(too_long());
    }
    let parsed =
        Url::parse(url).map_err(|e| invalid(format!("not an absolute http(s) URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the URL must use http or https, not `{}`",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "the URL must not carry credentials (user:password@); put a token in its path \
             or query instead"
                .into(),
        ));
    }
    // The normal form percent-encodes what needs it, which can make it longer.
    if parsed.as_str().len() > MAX_WEBHOOK_URL_LEN {
        return Err(too_long());
    }
    Ok(parsed)
}

/// `events` without repeats, in [`WebhookEvent::ALL`] order; no events means all of them.
fn normalise_events(events: &[WebhookEvent]) -> Vec<WebhookEvent> {
    if events.is_empty() {
        return WebhookEvent::ALL.to_vec();
    }
    let mut events = events.to_vec();
    events.sort_unstable();
    events.dedup();
    events
}

impl Catalog {
    /// Adds a webhook for `events` (all of them if empty) and returns it.
    ///
    /// The URL must be an absolute `http` or `https` URL with a host, at most
    /// [`MAX_WEBHOOK_URL_LEN`] bytes, without `user:password@` (credentials there would be
    /// shown by every `GET /api/v1/webhooks`; a token belongs in the path or query, which
    /// receivers expect). It is stored in normal form (`https://Hooks.Example` becomes
    /// `https://hooks.example/`). Otherwise fails with [`CatalogError::InvalidWebhook`].
    /// Events listed are stored as listed: a webhook is never subscribed to an event kind
    /// added in a later version without being asked.
    ///
    /// The id is one more than the highest in use, assigned by the insert itself
    /// (`WEBHOOK_INSERT`). Auto-increment is spelled differently on each backend (SQLite's
    /// `INTEGER PRIMARY KEY`, PostgreSQL's identity columns) and random ids would be long
    /// numbers in URLs; `MAX(id) + 1` is portable and gives `1, 2, 3, ...`. On SQLite an
    /// insert holds the write lock from its start, so two adds cannot compute the same id.
    /// On PostgreSQL they can, and then the primary key refuses the second insert; it is
    /// simply retried, and sees the first one's id. The highest id can be handed out again
    /// after its webhook is removed, which is harmless for a list an operator edits by hand.
    pub async fn add_webhook(
        &self,
        url: &str,
        events: &[WebhookEvent],
    ) -> Result<WebhookRecord, CatalogError> {
        let url = check_url(url)?;
        let events = normalise_events(events);
        let stored_events = join_list(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>());
        let created_at = now_unix();
        let mut attempt = 1;
        let id = loop {
            let inserted: Result<(i64,), sqlx::Error> =
                with_pool!(&self.pool, |p| sqlx::query_as(sql::WEBHOOK_INSERT)
                    .bind(url.as_str())
                    .bind(stored_events.as_str())
                    .bind(created_at)
                    .fetch_one(p)
                    .await);
            match inserted {
                Ok((id,)) => break id,
                Err(sqlx::Error::Database(e))
                    if e.is_unique_violation() && attempt < INSERT_ATTEMPTS =>
                {
                    tracing::debug!(attempt, "webhook id taken by a concurrent add; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(CatalogError::Database(e)),
            }
        };
        tracing::info!(
            id,
            host = url.host_str().unwrap_or_default(),
            events = %stored_events,
            "webhook added"
        );
        Ok(WebhookRecord {
            id,
            url: url.into(),
            events,
            created_at,
        })
    }

    /// Every webhook, ordered by id.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRecord>, CatalogError> {
        let rows: Vec<WebhookRow> = with_pool!(&self.pool, |p| sqlx::query_as(sql::WEBHOOK_LIST)
            .fetch_all(p)
            .await)?;
        let mut hooks = rows
            .into_iter()
            .map(WebhookRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        hooks.sort_unstable_by_key(|hook| hook.id);
        Ok(hooks)
    }

    /// The webhooks subscribed to `event`, ordered by id: whom to tell when it happens.
    /// Filtered here rather than in SQL; the list is short and read once per event.
    pub async fn webhooks_for(
        &self,
        event: WebhookEvent,
    ) -> Result<Vec<WebhookRecord>, CatalogError> {
        let mut hooks = self.list_webhooks().await?;
        hooks.retain(|hook| hook.events.contains(&event));
        Ok(hooks)
    }

    /// Removes the webhook; events after this are not sent to it (a delivery already under
    /// way finishes). Fails with [`CatalogError::WebhookNotFound`] if there is no such
    /// webhook.
    pub async fn remove_webhook(&self, id: i64) -> Result<(), CatalogError> {
        let deleted = with_pool!(&self.pool, |p| sqlx::query(sql::WEBHOOK_DELETE)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(CatalogError::WebhookNotFound { id });
        }
        tracing::info!(id, "webhook removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn event_spellings() {
        for (event, text) in [
            (WebhookEvent::Publish, "publish"),
            (WebhookEvent::Unpublish, "unpublish"),
            (WebhookEvent::RecordingReady, "recording_ready"),
        ] {
            assert_eq!(event.to_string(), text);
            assert_eq!(text.parse::<WebhookEvent>().expect("parses"), event);
            let json = serde_json::to_string(&event).expect("serializes");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<WebhookEvent>(&json).expect("deserializes"),
                event
            );
        }
        for bad in ["", "Publish", "recording-ready", "recordingReady", "all"] {
            assert!(bad.parse::<WebhookEvent>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_are_normalised() {
        use WebhookEvent::*;
        assert_eq!(normalise_events(&[]), WebhookEvent::ALL);
        assert_eq!(
            normalise_events(&[RecordingReady, Publish, RecordingReady]),
            [Publish, RecordingReady]
        );
    }

    #[test]
    fn accepted_urls_in_normal_form() {
        for (given, stored) in [
            ("https://hooks.example/x", "https://hooks.example/x"),
            ("http://Hooks.Example", "http://hooks.example/"),
            (
                "http://127.0.0.1:9000/hook?token=abc",
                "http://127.0.0.1:9000/hook?token=abc",
            ),
            ("https://[::1]:8443/h", "https://[::1]:8443/h"),
            ("https://hooks.example/a b", "https://hooks.example/a%20b"),
        ] {
            assert_eq!(check_url(given).expect(given).as_str(), stored);
        }
        let longest = format!("https://h.example/{}", "a".repeat(MAX_WEBHOOK_URL_LEN - 18));
        assert_eq!(longest.len(), MAX_WEBHOOK_URL_LEN);
        assert!(check_url(&longest).is_ok());
    }

    #[test]
    fn rejected_urls_are_not_repeated() {
        let too_long = format!("https://h.example/{}", "a".repeat(MAX_WEBHOOK_URL_LEN - 17));
        // Within the limit as given, over it once spaces are percent-encoded.
        let grows = format!(
            "https://h.example/{}x",
            " ".repeat(MAX_WEBHOOK_URL_LEN - 100)
        );
        for bad in [
            "",
            "/hook",
            "hooks.example/x",
            "ftp://hooks.example/x",
            "file:///etc/passwd",
            "mailto:ops@example.com",
            "https://user:s3cret@hooks.example/x",
            "https://user@hooks.example/x",
            "https://:s3cret@hooks.example/x",
            "http://",
            too_long.as_str(),
            grows.as_str(),
        ] {
            let err = check_url(bad).expect_err(bad);
            assert!(
                matches!(err, CatalogError::InvalidWebhook { .. }),
                "{bad:?}"
            );
            let text = format!("{err} {err:?}");
            assert!(!text.contains("s3cret"), "{text}");
            assert!(!text.contains("hooks.example"), "{text}");
        }
    }

    proptest! {
        #[test]
        fn event_parses_only_its_own_names(s in "(publish|unpublish|recording_ready|[a-z_]{0,16})") {
            match s.parse::<WebhookEvent>() {
                Ok(event) => prop_assert_eq!(event.to_string(), s),
                Err(_) => prop_assert!(WebhookEvent::ALL.iter().all(|e| e.as_str() != s)),
            }
        }

        #[test]
        fn normalised_events_are_sorted_unique_and_complete(
            picks in proptest::collection::vec(0..3usize, 0..8)
        ) {
            let events: Vec<_> = picks.iter().map(|&i| WebhookEvent::ALL[i]).collect();
            let normal = normalise_events(&events);
            prop_assert!(normal.windows(2).all(|w| w[0] < w[1]));
            if events.is_empty() {
                prop_assert_eq!(normal, WebhookEvent::ALL.to_vec());
            } else {
                prop_assert!(events.iter().all(|e| normal.contains(e)));
                prop_assert!(normal.iter().all(|e| events.contains(e)));
            }
        }
    }
}
