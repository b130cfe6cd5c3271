//! A thumbnail as a viewer checks it (`thumbnail.jpg` and its `thumbnail.jpg.sig`): the Rust
//! twin of verify.js's `verifyThumbnail`, the same checks in the same order with the same
//! reasons, over the same [`ViewerTrust`] as the media. Both run the cases of
//! `thumbnail_vectors` (this crate's tests; the browser's in
//! `broadcast/tests/broadcast/thumbnail_verify.rs`).
//!
//! In order: a sidecar at all (`missing_signature`); its envelope, read under the largest
//! statement cap so that a genuine statement of another kind is named (`wrong_kind`, else
//! `malformed_signature`); the thumbnail statement strictly, under its own cap
//! (`malformed_signature`); about the stream asked for (`wrong_stream`) and, for a
//! recording's, of the recording's session (`wrong_session`); the bytes as long as signed
//! (`wrong_length`) and hashing to what was signed (`digest_mismatch`); then a key the root
//! certified (never a delegated part key) that may have signed at the time the statement
//! counts as signed (the viewer's clock for a live one; for a recording's, its capture
//! time, never later than now), and its signature.

use domain::wire::{
    SignedEvent, ThumbnailStatement, EVENT_TAG, MAX_THUMBNAIL_STATEMENT_LEN, PART_TAG, SEGMENT_TAG,
    THUMBNAIL_TAG,
};
use domain::{SessionId, StreamName};
use sha2::{Digest, Sha256};

use super::{refuse, Reason, Refused, ViewerTrust};

/// What a thumbnail must be about.
#[derive(Debug, Clone, Copy)]
pub struct ThumbnailExpect<'a> {
    /// The stream whose list entry shows it.
    pub stream: &'a StreamName,
    /// A recording's: its session (the recording's id), and the statement counts as signed
    /// at its capture time. `None`: a live stream's, judged at the viewer's clock.
    pub recording: Option<SessionId>,
}

/// Checks `jpeg` against `sidecar` (the bytes of `thumbnail.jpg.sig`) at the viewer's clock
/// `now_ms` (unix milliseconds): the statement, or why not.
pub fn verify_thumbnail(
    trust: &ViewerTrust,
    jpeg: &[u8],
    sidecar: &[u8],
    expect: ThumbnailExpect<'_>,
    now_ms: u64,
) -> Result<ThumbnailStatement, Refused> {
    if sidecar.is_empty() {
        return refuse(Reason::MissingSignature, "no thumbnail.jpg.sig");
    }
    let signed = SignedEvent::decode(sidecar)
        .or_else(|e| refuse(Reason::MalformedSignature, format!("envelope: {e}")))?;
    let statement = &signed.statement_bytes;
    if !statement.starts_with(THUMBNAIL_TAG) {
        let other = [SEGMENT_TAG, PART_TAG, EVENT_TAG]
            .iter()
            .any(|tag| statement.starts_with(tag));
        let reason = if other {
            Reason::WrongKind
        } else {
            Reason::MalformedSignature
        };
        return refuse(reason, "not a thumbnail statement");
    }
    if statement.len() > MAX_THUMBNAIL_STATEMENT_LEN {
        return refuse(
            Reason::MalformedSignature,
            "thumbnail statement over its cap",
        );
    }
    let t = ThumbnailStatement::decode(statement)
        .or_else(|e| refuse(Reason::MalformedSignature, format!("statement: {e}")))?;
    if &t.stream != expect.stream {
        return refuse(Reason::WrongStream, format!("a thumbnail of {}", t.stream));
    }
    if expect.recording.is_some_and(|session| session != t.session) {
        return refuse(Reason::WrongSession, "a thumbnail of another session");
    }
    if t.byte_len != jpeg.len() as u64 {
        return refuse(
            Reason::WrongLength,
            format!("{} bytes, signed {}", jpeg.len(), t.byte_len),
        );
    }
    if <[u8; 32]>::from(Sha256::digest(jpeg)) != t.digest {
        return refuse(
            Reason::DigestMismatch,
            "the thumbnail is not the one signed",
        );
    }
    let now = now_ms / 1000;
    let at = match expect.recording {
        Some(_) => (t.captured_ms / 1000).min(now),
        None => now,
    };
    trust.verify_signed(t.key_id, t.algorithm, at, statement, &signed.signature)?;
    Ok(t)
}
