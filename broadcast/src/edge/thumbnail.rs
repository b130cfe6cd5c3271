//! A pushed thumbnail, checked before it is kept: its signed statement (which came in the
//! push's statement header) verified against a trusted ingest key on the blocking pool, and
//! the bytes (hashed while they streamed in) of exactly the length and digest it signed.
//! Only then does the node keep it (`crate::thumbnails`) and serve it; anything else is
//! refused and counted by reason. Never fail open: a thumbnail whose signature could not be
//! checked is not served.

use std::sync::Arc;

use bytes::Bytes;
use domain::time::WallClock;
use domain::wire::{SignedThumbnail, ThumbnailStatement};
use domain::StreamName;

use super::{reject_reason, Edge};
use crate::thumbnails::{HeldThumbnail, Offered};
use crate::BroadcastError;

/// A thumbnail push's statement header (hex of the envelope), decoded: it must be a
/// thumbnail statement of the stream the path names. Checked before the body is read.
pub(super) fn statement_header(
    value: &[u8],
    stream: &StreamName,
) -> Result<(Bytes, SignedThumbnail, ThumbnailStatement), &'static str> {
    let bytes = hex::decode(value).map_err(|_| "malformed")?;
    let signed = SignedThumbnail::decode(&bytes).map_err(|_| "malformed")?;
    let statement = signed.statement().map_err(|_| "malformed")?;
    if &statement.stream != stream {
        return Err("malformed");
    }
    Ok((Bytes::from(bytes), signed, statement))
}

impl Edge {
    /// Counts a refused thumbnail and says so.
    pub(super) fn thumbnail_refused(&self, reason: &'static str) -> BroadcastError {
        self.node.metrics.thumbnail(reason);
        BroadcastError::ThumbnailRefused { reason }
    }

    /// A thumbnail's bytes (`jpeg`, whose SHA-256 is `digest`) and its signed statement:
    /// verified, then kept as its stream's latest if it is of the live session and newer.
    pub(super) async fn take_thumbnail(
        &self,
        (envelope, signed, statement): (Bytes, SignedThumbnail, ThumbnailStatement),
        jpeg: Bytes,
        digest: [u8; 32],
    ) -> Result<Offered, BroadcastError> {
        if statement.byte_len != jpeg.len() as u64 || statement.digest != digest {
            return Err(self.thumbnail_refused("digest_mismatch"));
        }
        let trust = Arc::clone(&self.trust);
        let key_id = statement.key_id;
        let now = WallClock.unix_secs();
        let verified = tokio::task::spawn_blocking(move || {
            trust
                .read()
                .verify(key_id, &signed.statement_bytes, &signed.signature, now)
        })
        .await
        .map_err(BroadcastError::Task)?;
        if let Err(e) = verified {
            let reason = reject_reason(&e).label();
            tracing::debug!(key_id = %key_id, reason, "thumbnail refused");
            return Err(self.thumbnail_refused(thumbnail_reason(reason)));
        }
        let offered = self
            .node
            .keep_thumbnail(HeldThumbnail::new(statement, jpeg, envelope));
        self.node.metrics.thumbnail(match offered {
            Offered::Kept => "kept",
            Offered::Stale => "stale",
            Offered::OtherSession => "other_session",
        });
        Ok(offered)
    }
}

/// The label a trust refusal is counted under: the gate's, where it is one of the
/// thumbnail outcomes (a delegated key never signs a thumbnail: a bad signature then).
fn thumbnail_reason(gate: &'static str) -> &'static str {
    match gate {
        "unknown_key" | "expired_key" | "revoked_key" => gate,
        _ => "bad_signature",
    }
}
