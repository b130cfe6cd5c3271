//! What the ingest asks of the cluster's catalog, as a trait: whether a stream key may
//! publish, and where a stream's numbering stands. The binary implements it over the
//! catalog (`sealcast`'s roles); the crate's tests use an in-memory fake, so the registry's
//! rules (takeover, numbering across sessions and ingests, a catalog that cannot answer)
//! are tested here without a database.

use async_trait::async_trait;
use domain::StreamName;

/// An error from the store behind a [`StreamAuthority`], with its own words.
pub type AuthorityError = Box<dyn std::error::Error + Send + Sync>;

/// How to number a new publish session of a stream, as the store keeps it for every
/// ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    /// The media sequence number of its first segment.
    pub first_sequence: u64,
    /// The discontinuity sequence of its segments.
    pub discontinuity_sequence: u64,
    /// Whether it follows an earlier session (its first segment starts a discontinuity).
    pub discontinuity: bool,
}

/// The ingest's view of the catalog.
#[async_trait]
pub trait StreamAuthority: Send + Sync + std::fmt::Debug {
    /// The stream `presented_key` may publish, or `None` for a key it does not know.
    async fn authenticate(&self, presented_key: &str)
        -> Result<Option<StreamName>, AuthorityError>;

    /// Counts a new publish session of `stream` and says how to number it.
    async fn begin_numbering(&self, stream: &StreamName) -> Result<Numbering, AuthorityError>;

    /// Records that `stream` went live at `at_unix` (seconds).
    async fn mark_live(&self, stream: &StreamName, at_unix: i64) -> Result<(), AuthorityError>;

    /// Records that `stream`'s next segment will be number `next`.
    async fn advance_sequence(&self, stream: &StreamName, next: u64) -> Result<(), AuthorityError>;

    /// Whether `stream` is private (served only with a playback token). Asked before a
    /// publish starts: a store that cannot answer refuses the publish, rather than let a
    /// private stream go out public. Stores without private streams keep the default.
    async fn is_private(&self, stream: &StreamName) -> Result<bool, AuthorityError> {
        let _ = stream;
        Ok(false)
    }

    /// Whether `stream` is recorded by the nodes that record (an operator may switch it
    /// off). Asked before a publish starts, and bounded like every catalog call; a store
    /// that cannot answer has the stream recorded. Stores that record everything keep the
    /// default.
    async fn records(&self, stream: &StreamName) -> Result<bool, AuthorityError> {
        let _ = stream;
        Ok(true)
    }

    /// Whether a publish of `stream`, its key already accepted, may start: the operator's
    /// `on_publish` hook, where there is one. Asked after the key and before anything
    /// starts; false refuses the publish. Not bounded by [`crate::registry::CATALOG_ANSWER_TIMEOUT`]:
    /// a hook has its own timeout. Stores without a hook keep the default.
    async fn may_publish(&self, stream: &StreamName) -> Result<bool, AuthorityError> {
        let _ = stream;
        Ok(true)
    }
}
