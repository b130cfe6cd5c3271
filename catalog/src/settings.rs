//! What an operator sets per stream besides its key: whether it is private (served only
//! with a playback token, issue 34) and whether it is recorded (issue 50). Both are read by
//! the ingest when a publish starts and every second while it is live, and carried to the
//! edges in the signed session start: the edges never act on what they read here (their admin
//! API shows and changes them).

use domain::StreamName;

use crate::catalog::with_pool;
use crate::sql::{self, StreamFlag};
use crate::{Catalog, CatalogError};

impl Catalog {
    /// Makes the stream private (served only with a playback token) or public. A publish
    /// already live is told by the ingest that holds it, which looks at the catalog every
    /// second; the next publish carries the new value anyway. Fails with
    /// [`CatalogError::NotFound`] if there is no such stream.
    pub async fn set_private(&self, name: &StreamName, private: bool) -> Result<(), CatalogError> {
        self.set_flag(StreamFlag::Private, name, private).await?;
        tracing::info!(stream = %name, private, "stream privacy set");
        Ok(())
    }

    /// Whether the stream is private. Fails with [`CatalogError::NotFound`] if there is no
    /// such stream.
    pub async fn is_private(&self, name: &StreamName) -> Result<bool, CatalogError> {
        self.flag(StreamFlag::Private, name).await
    }

    /// Switches the stream's recording on or off. A publish already live is told by the
    /// ingest that holds it, which looks at the catalog every second (the nodes that record
    /// stop at the next segment, or start again); the next publish carries the new value
    /// anyway. Fails with [`CatalogError::NotFound`] if there is no such stream.
    pub async fn set_record(&self, name: &StreamName, record: bool) -> Result<(), CatalogError> {
        self.set_flag(StreamFlag::Record, name, record).await?;
        tracing::info!(stream = %name, record, "stream recording switched");
        Ok(())
    }

    /// Whether the stream is recorded. Fails with [`CatalogError::NotFound`] if there is
    /// no such stream.
    pub async fn is_recorded(&self, name: &StreamName) -> Result<bool, CatalogError> {
        self.flag(StreamFlag::Record, name).await
    }

    /// Sets one of a stream's flags; [`CatalogError::NotFound`] if there is no such stream.
    async fn set_flag(
        &self,
        flag: StreamFlag,
        name: &StreamName,
        value: bool,
    ) -> Result<(), CatalogError> {
        let updated = with_pool!(&self.pool, |p| sqlx::query(sql::StreamFlag::write(flag))
            .bind(i64::from(value))
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(CatalogError::NotFound { name: name.clone() });
        }
        Ok(())
    }

    /// Reads one of a stream's flags; [`CatalogError::NotFound`] if there is no such stream.
    async fn flag(&self, flag: StreamFlag, name: &StreamName) -> Result<bool, CatalogError> {
        let row: Option<(i64,)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::StreamFlag::read(flag))
                .bind(name.as_str())
                .fetch_optional(p)
                .await)?;
        match row {
            Some((value,)) => Ok(value != 0),
            None => Err(CatalogError::NotFound { name: name.clone() }),
        }
    }
}
