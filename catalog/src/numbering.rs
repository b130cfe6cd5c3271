//! Where each stream's numbering stands, so that whichever ingest publishes a stream next
//! (the same one after a restart, or another one) continues it: media sequence numbers
//! never go back, and every publish session after the first is a discontinuity.
//!
//! An ingest calls [`Catalog::begin_numbering`] when a publish starts and
//! [`Catalog::advance_sequence`] before each segment leaves it, so what the catalog holds is
//! never behind anything an edge has seen.

use domain::StreamName;

use crate::catalog::with_pool;
use crate::{sql, Catalog, CatalogError};

/// How a new publish session of a stream is numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    /// The media sequence number of its first segment.
    pub first_sequence: u64,
    /// The discontinuity sequence of its segments.
    pub discontinuity_sequence: u64,
    /// Whether it follows an earlier session (its first segment starts a discontinuity).
    pub discontinuity: bool,
}

impl Catalog {
    /// Counts a new publish session of `name` and says how to number it. Fails with
    /// [`CatalogError::NotFound`] if there is no such stream.
    pub async fn begin_numbering(&self, name: &StreamName) -> Result<Numbering, CatalogError> {
        let row: Option<(i64, i64, i64)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::STREAM_BEGIN_NUMBERING)
                .bind(name.as_str())
                .fetch_optional(p)
                .await)?;
        let (next, discontinuity_sequence, sessions) =
            row.ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
        Ok(Numbering {
            first_sequence: unsigned("next_sequence", next)?,
            discontinuity_sequence: unsigned("discontinuity_sequence", discontinuity_sequence)?,
            discontinuity: unsigned("sessions", sessions)? > 1,
        })
    }

    /// Records that `name`'s next segment will be numbered `next` (or later): raises the
    /// stored number, never lowers it.
    pub async fn advance_sequence(&self, name: &StreamName, next: u64) -> Result<(), CatalogError> {
        let next = i64::try_from(next).map_err(|_| CatalogError::InvalidInput {
            what: "sequence number",
            reason: "beyond 2^63".into(),
        })?;
        with_pool!(&self.pool, |p| sqlx::query(sql::STREAM_ADVANCE_SEQUENCE)
            .bind(next)
            .bind(name.as_str())
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }
}

fn unsigned(column: &'static str, value: i64) -> Result<u64, CatalogError> {
    u64::try_from(value).map_err(|_| CatalogError::InvalidRow {
        column,
        reason: format!("{value} is negative"),
    })
}
