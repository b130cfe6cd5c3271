//! Recordings: finished publish sessions kept as video on demand.
//!
//! Every broadcast node keeps its own copy of a session's segments and, when the session
//! ends, finishes the recording and calls [`Catalog::add_recording`]. Only one of them gets
//! `true` back, and that one sends the `recording_ready` webhook. Removing a recording here
//! removes it from the list; each node deletes its files at its next retention sweep, which
//! asks [`Catalog::recordings_ended_before`] what has aged out.

use std::cmp::Reverse;

use domain::StreamName;
use serde::Serialize;

use crate::catalog::{parse_name, with_pool};
use crate::columns::{
    check_renditions, check_session_id, join_list, parse_renditions, parse_session_id,
};
use crate::{sql, Catalog, CatalogError};

/// One finished recording, as `GET /api/v1/recordings` serves it (the API adds its
/// `master_url`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingRecord {
    /// The stream it recorded.
    pub stream: StreamName,
    /// The id of the session it recorded (16 lowercase hex digits), which names its
    /// directory and its URL (`/vod/{stream}/{id}/`).
    pub id: String,
    /// When the session went live, in unix seconds.
    pub started_at: i64,
    /// When it ended, in unix seconds; retention counts from here.
    pub ended_at: i64,
    /// The playable length, in seconds (the sum of the segments' durations, which may be
    /// less than `ended_at - started_at`).
    pub duration_secs: f64,
    /// The renditions recorded, in ladder order.
    pub renditions: Vec<String>,
}

/// A `recordings` row as read, before its values are checked.
#[derive(sqlx::FromRow)]
struct RecordingRow {
    stream: String,
    id: String,
    started_at: i64,
    ended_at: i64,
    duration_secs: f64,
    renditions: String,
}

impl RecordingRow {
    fn into_record(self) -> Result<RecordingRecord, CatalogError> {
        Ok(RecordingRecord {
            stream: parse_name(self.stream)?,
            // Checked on the way out too: the sweep deletes the directory this names.
            id: parse_session_id("id", self.id)?,
            started_at: self.started_at,
            ended_at: self.ended_at,
            duration_secs: self.duration_secs,
            renditions: parse_renditions(&self.renditions)?,
        })
    }
}

/// Checks and converts the rows of a list query.
fn into_records(rows: Vec<RecordingRow>) -> Result<Vec<RecordingRecord>, CatalogError> {
    rows.into_iter().map(RecordingRow::into_record).collect()
}

impl Catalog {
    /// Records a finished recording. Returns `true` if this call recorded it and `false` if
    /// it was already recorded (several broadcast nodes finish the same recording; exactly
    /// one sees `true`). The stored record is then the first one.
    ///
    /// Fails with [`CatalogError::InvalidInput`] if the id is not 16 lowercase hex digits, a
    /// rendition is not a valid rendition name, or the duration is negative or not finite
    /// (neither could be stored on SQLite nor served as JSON).
    pub async fn add_recording(&self, recording: &RecordingRecord) -> Result<bool, CatalogError> {
        check_session_id(&recording.id)?;
        check_renditions(&recording.renditions)?;
        if !(recording.duration_secs.is_finite() && recording.duration_secs >= 0.0) {
            return Err(CatalogError::InvalidInput {
                what: "recording duration",
                reason: format!(
                    "{} is not a finite, non-negative number of seconds",
                    recording.duration_secs
                ),
            });
        }
        let inserted = with_pool!(&self.pool, |p| sqlx::query(sql::RECORDING_INSERT)
            .bind(recording.stream.as_str())
            .bind(recording.id.as_str())
            .bind(recording.started_at)
            .bind(recording.ended_at)
            .bind(recording.duration_secs)
            .bind(join_list(&recording.renditions))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        let recorded = inserted == 1;
        if recorded {
            tracing::info!(
                stream = %recording.stream,
                id = %recording.id,
                duration_secs = recording.duration_secs,
                "recording added to the catalog"
            );
        }
        Ok(recorded)
    }

    /// Every recording, newest first: by end time, latest first, then by stream and id in
    /// byte order (sorted here, the same on both backends).
    pub async fn list_recordings(&self) -> Result<Vec<RecordingRecord>, CatalogError> {
        let rows: Vec<RecordingRow> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::RECORDING_LIST)
                .fetch_all(p)
                .await)?;
        let mut recordings = into_records(rows)?;
        recordings.sort_unstable_by(|a, b| {
            (Reverse(a.ended_at), &a.stream, &a.id).cmp(&(Reverse(b.ended_at), &b.stream, &b.id))
        });
        Ok(recordings)
    }

    /// The recording of `stream` with this id, if there is one. Any id may be asked for (say,
    /// from a URL); one that cannot be an id is simply not found.
    pub async fn get_recording(
        &self,
        stream: &StreamName,
        id: &str,
    ) -> Result<Option<RecordingRecord>, CatalogError> {
        let row: Option<RecordingRow> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::RECORDING_GET)
                .bind(stream.as_str())
                .bind(id)
                .fetch_optional(p)
                .await)?;
        row.map(RecordingRow::into_record).transpose()
    }

    /// Removes the recording from the catalog, so it is no longer listed or served; every
    /// node deletes its files at its next retention sweep. Fails with
    /// [`CatalogError::RecordingNotFound`] if there is no such recording.
    pub async fn remove_recording(
        &self,
        stream: &StreamName,
        id: &str,
    ) -> Result<(), CatalogError> {
        let deleted = with_pool!(&self.pool, |p| sqlx::query(sql::RECORDING_DELETE)
            .bind(stream.as_str())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(CatalogError::RecordingNotFound {
                stream: stream.clone(),
                id: id.to_owned(),
            });
        }
        tracing::info!(%stream, id, "recording removed from the catalog");
        Ok(())
    }

    /// The recordings that ended strictly before `cutoff_unix` (unix seconds), oldest first:
    /// what a retention sweep should delete, in the order it should delete them.
    pub async fn recordings_ended_before(
        &self,
        cutoff_unix: i64,
    ) -> Result<Vec<RecordingRecord>, CatalogError> {
        let rows: Vec<RecordingRow> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::RECORDING_ENDED_BEFORE)
                .bind(cutoff_unix)
                .fetch_all(p)
                .await)?;
        let mut recordings = into_records(rows)?;
        recordings.sort_unstable_by(|a, b| {
            (a.ended_at, &a.stream, &a.id).cmp(&(b.ended_at, &b.stream, &b.id))
        });
        Ok(recordings)
    }
}
