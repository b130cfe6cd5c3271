//! Publish sessions: each time a publisher went live on an ingest node, and when it stopped.
//!
//! Several nodes may record the same event (every broadcast node hears the ingest's
//! announcement), but webhooks must fire once per cluster. So each write reports whether
//! *it* changed the catalog: [`Catalog::start_session`] is true for the one insert that
//! made the row, [`Catalog::end_session`] for the one update that set its end; the node that
//! sees `true` sends the webhook.
//!
//! An operator ends a live session through the API (`POST /api/v1/live/{name}/end`), which
//! may be served by any node: [`Catalog::request_end`] marks the session, and the ingest
//! node holding the publish finds it with [`Catalog::end_requests`] and drops it.

use std::cmp::Reverse;

use domain::StreamName;
use serde::Serialize;

use crate::catalog::{now_unix, parse_name, with_pool};
use crate::columns::{
    check_renditions, check_session_id, join_list, parse_renditions, parse_session_id,
};
use crate::{sql, Catalog, CatalogError};

/// One publish session, as `GET /api/v1/sessions` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// The stream that was published.
    pub stream: StreamName,
    /// The session id, as [`domain::SessionId`] displays it (16 lowercase hex digits); the
    /// same id names the session's recording.
    pub session: String,
    /// The ingest node that took the publish, so an operator can tell where it ran.
    pub ingest_node: String,
    /// When the publish went live, in unix seconds.
    pub started_at: i64,
    /// When it ended, in unix seconds; `None` while it is live (or if its ingest died
    /// without telling anyone).
    pub ended_at: Option<i64>,
    /// The renditions the ingest produced (`src`, `720p`, ...), in ladder order; known only
    /// once the first segments exist, hence [`Catalog::set_session_renditions`].
    pub renditions: Vec<String>,
}

/// A `sessions` row as read, before its values are checked.
#[derive(sqlx::FromRow)]
struct SessionRow {
    stream: String,
    session: String,
    ingest_node: String,
    started_at: i64,
    ended_at: Option<i64>,
    renditions: String,
}

impl SessionRow {
    fn into_record(self) -> Result<SessionRecord, CatalogError> {
        Ok(SessionRecord {
            stream: parse_name(self.stream)?,
            session: parse_session_id("session", self.session)?,
            ingest_node: self.ingest_node,
            started_at: self.started_at,
            ended_at: self.ended_at,
            renditions: parse_renditions(&self.renditions)?,
        })
    }
}

impl Catalog {
    /// Records that a session started. Returns `true` if this call recorded it and `false`
    /// if the session was already recorded (by another node, or an earlier call), so that
    /// exactly one of several nodes recording the same event sees `true`. The stored record
    /// is then the first one; this call's values are dropped.
    ///
    /// Fails with [`CatalogError::InvalidInput`] if the session id is not 16 lowercase hex
    /// digits or a rendition is not a valid rendition name. The stream need not be in the
    /// catalog (the ingest authorised it a moment ago; it may be removed since).
    pub async fn start_session(&self, session: &SessionRecord) -> Result<bool, CatalogError> {
        check_session_id(&session.session)?;
        check_renditions(&session.renditions)?;
        let inserted = with_pool!(&self.pool, |p| sqlx::query(sql::SESSION_INSERT)
            .bind(session.stream.as_str())
            .bind(session.session.as_str())
            .bind(session.ingest_node.as_str())
            .bind(session.started_at)
            .bind(session.ended_at)
            .bind(join_list(&session.renditions))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        let recorded = inserted == 1;
        if recorded {
            tracing::info!(
                stream = %session.stream,
                session = %session.session,
                node = %session.ingest_node,
                "publish session started"
            );
        }
        Ok(recorded)
    }

    /// Records that a session ended at `ended_at` (unix seconds). Returns `true` if this
    /// call set the end and `false` if the session had already ended (or is not in the
    /// catalog), so that exactly one caller sees `true`; the first end recorded stays.
    pub async fn end_session(
        &self,
        stream: &StreamName,
        session: &str,
        ended_at: i64,
    ) -> Result<bool, CatalogError> {
        let updated = with_pool!(&self.pool, |p| sqlx::query(sql::SESSION_END)
            .bind(ended_at)
            .bind(stream.as_str())
            .bind(session)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        let recorded = updated == 1;
        if recorded {
            tracing::info!(%stream, session, "publish session ended");
        }
        Ok(recorded)
    }

    /// Replaces the session's renditions (the ingest knows its ladder only once encoding
    /// runs). Fails with [`CatalogError::SessionNotFound`] if there is no such session, or
    /// [`CatalogError::InvalidInput`] if a rendition is not a valid rendition name.
    pub async fn set_session_renditions(
        &self,
        stream: &StreamName,
        session: &str,
        renditions: &[String],
    ) -> Result<(), CatalogError> {
        check_renditions(renditions)?;
        let updated = with_pool!(&self.pool, |p| sqlx::query(sql::SESSION_SET_RENDITIONS)
            .bind(join_list(renditions))
            .bind(stream.as_str())
            .bind(session)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(CatalogError::SessionNotFound {
                stream: stream.clone(),
                session: session.to_owned(),
            });
        }
        Ok(())
    }

    /// At most `limit` sessions, of `stream` or of every stream, newest first: by start
    /// time, latest first, then by stream and session id in byte order, the same on both
    /// backends (the database picks the newest; ties are decided here, see
    /// `SESSION_LIST_NEWEST`).
    pub async fn list_sessions(
        &self,
        stream: Option<&StreamName>,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, CatalogError> {
        let rows: Vec<SessionRow> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::SESSION_LIST_NEWEST)
                .bind(stream.map(StreamName::as_str))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await)?;
        let mut sessions = rows
            .into_iter()
            .map(SessionRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_unstable_by(|a, b| {
            (Reverse(a.started_at), &a.stream, &a.session).cmp(&(
                Reverse(b.started_at),
                &b.stream,
                &b.session,
            ))
        });
        sessions.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(sessions)
    }

    /// Asks for the live session of `stream` to be ended: marks every session of it that
    /// has not ended (normally one) so its ingest node finds it in [`Catalog::end_requests`].
    /// Returns `false` if the stream has no live session, so the API can answer 404.
    pub async fn request_end(&self, stream: &StreamName) -> Result<bool, CatalogError> {
        let marked = with_pool!(&self.pool, |p| sqlx::query(sql::SESSION_REQUEST_END)
            .bind(now_unix())
            .bind(stream.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if marked > 0 {
            tracing::info!(%stream, "end of the live session requested");
        }
        Ok(marked > 0)
    }

    /// Asks for every live session of `stream` but `session` (the one that just started)
    /// to be ended, on whichever ingest node holds it: the stream key now publishes
    /// through `session`, so an older connection on another ingest must stop, as a
    /// takeover on one ingest stops the old connection. Returns how many were marked.
    pub async fn request_end_others(
        &self,
        stream: &StreamName,
        session: &str,
    ) -> Result<u64, CatalogError> {
        check_session_id(session)?;
        let marked = with_pool!(&self.pool, |p| sqlx::query(sql::SESSION_REQUEST_END_OTHERS)
            .bind(now_unix())
            .bind(stream.as_str())
            .bind(session)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if marked > 0 {
            tracing::info!(%stream, session, "a new session took the stream over: the older one's end requested");
        }
        Ok(marked)
    }

    /// The live sessions on ingest node `node` that an operator asked to end, as (stream,
    /// session id), ordered. Cheap enough to poll every second: an index covers it, and a
    /// request stops being listed once the session's end is recorded.
    pub async fn end_requests(
        &self,
        node: &str,
    ) -> Result<Vec<(StreamName, String)>, CatalogError> {
        let rows: Vec<(String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::SESSION_END_REQUESTS)
                .bind(node)
                .fetch_all(p)
                .await)?;
        let mut requests = rows
            .into_iter()
            .map(|(stream, session)| Ok((parse_name(stream)?, session)))
            .collect::<Result<Vec<_>, CatalogError>>()?;
        requests.sort_unstable();
        Ok(requests)
    }
}
