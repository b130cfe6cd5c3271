//! The wire format of everything the cluster signs: one strict reader and codec trait, one
//! signed envelope, one file per statement.
//!
//! - `codec`: [`Reader`] (bounds-checked, refuses trailing bytes) and [`Codec`] (a value
//!   writes itself and reads itself back); [`WireError`], which becomes a
//!   [`DomainError`](crate::DomainError) here and a `CertsError` in the certs crate (whose
//!   certificates, revocations and trust bundles are read with the same [`Reader`]).
//! - `envelope`: [`Signed`], a statement's bytes and a signature over them, and
//!   [`Statement`], what a statement tells its envelope (tag error, cap, names in errors).
//! - `key`: [`SignatureAlgorithm`] and [`KeyId`], how every statement names its signer.
//! - `segment`: [`SegmentStatement`], what the ingest signs per segment.
//! - `part`: [`PartStatement`], the same per LL-HLS part.
//! - `part_key`: [`PartKeyStatement`], an ingest's delegation of one run of parts to a
//!   short-lived key ([`SignedPartKey`]), on the statement topic beside the parts.
//! - `media`: [`MediaStatement`], a segment's or a part's statement, as the statement topic
//!   carries either in one envelope ([`SignedMedia`]).
//! - `event`: [`EventStatement`] around each control event ([`SignedEvent`]).
//! - `presence`: [`PresenceStatement`], a broadcast node's signed presence
//!   ([`SignedPresence`]).
//! - `thumbnail`: [`ThumbnailStatement`], what the ingest signs per thumbnail
//!   ([`SignedThumbnail`]), served beside it as `thumbnail.jpg.sig`.
//!
//! Every statement opens with its own domain-separation tag, so a signature over one kind
//! never passes for a signature over another; decoding is strict (one encoding per value)
//! and bounded (every length checked against its cap before anything is copied). Adding a
//! statement is one new file: its type, its tag, its [`Codec`] and [`Statement`] impls.

mod codec;
mod envelope;
mod event;
mod key;
mod media;
mod part;
mod part_key;
mod presence;
mod segment;
mod thumbnail;

pub use codec::{put_name, put_part, Codec, Reader, WireError};
pub use envelope::{Signed, Statement, MAX_SIGNATURE_LEN};
pub use event::{EventStatement, SignedEvent, EVENT_TAG, MAX_EVENT_LEN, MAX_SIGNED_EVENT_LEN};
pub use key::{KeyId, SignatureAlgorithm};
pub use media::{MediaStatement, SignedMedia, MAX_MEDIA_STATEMENT_LEN};
pub use part::{PartStatement, PART_TAG};
pub use part_key::{
    PartKeyStatement, SignedPartKey, MAX_DELEGATED_KEY_LEN, MAX_PART_KEY_LEN, MAX_PART_KEY_RUN,
    MAX_SIGNED_PART_KEY_LEN, PART_KEY_TAG,
};
pub use presence::{
    PresenceStatement, SignedPresence, MAX_PRESENCE_CERTIFICATE_LEN, MAX_PRESENCE_JSON_LEN,
    MAX_SIGNED_PRESENCE_LEN, PRESENCE_TAG,
};
pub use segment::{SegmentStatement, SEGMENT_TAG};
pub use thumbnail::{
    SignedThumbnail, ThumbnailStatement, MAX_THUMBNAIL_STATEMENT_LEN, THUMBNAIL_TAG,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DomainError;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the bytes, no decoder panics, and what an envelope accepts re-encodes
        /// to exactly the same bytes.
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SegmentStatement::decode(&bytes);
            let _ = PartStatement::decode(&bytes);
            let _ = EventStatement::decode(&bytes);
            let _ = PresenceStatement::decode(&bytes);
            let _ = ThumbnailStatement::decode(&bytes);
            if let Ok(e) = SignedThumbnail::decode(&bytes) {
                prop_assert_eq!(&e.encode(), &bytes);
                let _ = e.statement();
            }
            if let Ok(e) = Signed::<MediaStatement>::decode(&bytes) {
                prop_assert_eq!(&e.encode(), &bytes);
                let _ = e.statement();
            }
            if let Ok(e) = SignedEvent::decode(&bytes) {
                prop_assert_eq!(&e.encode(), &bytes);
                let _ = e.statement();
            }
            if let Ok(e) = SignedPresence::decode(&bytes) {
                prop_assert_eq!(&e.encode(), &bytes);
                let _ = e.statement();
            }
        }

        /// No bytes are two kinds of statement: the tags tell them all apart.
        #[test]
        fn a_statement_decodes_as_its_own_kind_only(
            kind in 0usize..5,
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let tag = [SEGMENT_TAG, PART_TAG, EVENT_TAG, PRESENCE_TAG, THUMBNAIL_TAG][kind];
            let bytes = [tag, &tail].concat();
            let decoded = [
                SegmentStatement::decode(&bytes).is_ok(),
                PartStatement::decode(&bytes).is_ok(),
                EventStatement::decode(&bytes).is_ok(),
                PresenceStatement::decode(&bytes).is_ok(),
                ThumbnailStatement::decode(&bytes).is_ok(),
            ];
            for (other, ok) in decoded.into_iter().enumerate() {
                prop_assert!(other == kind || !ok, "{} read as {}", kind, other);
            }
        }
    }

    /// The wrong-tag error of each statement, as callers match on it.
    #[test]
    fn each_statement_reports_a_foreign_tag_as_its_own_error() {
        let json = br#"{"type":"synced"}"#;
        assert_eq!(
            SegmentStatement::decode(json),
            Err(DomainError::WrongMediaTag)
        );
        assert_eq!(PartStatement::decode(json), Err(DomainError::WrongMediaTag));
        assert_eq!(
            EventStatement::decode(json),
            Err(DomainError::WrongEventTag)
        );
        assert_eq!(
            PresenceStatement::decode(json),
            Err(DomainError::WrongPresenceTag)
        );
        assert_eq!(
            DomainError::from(WireError::WrongTag { what: "thing" }),
            DomainError::WrongTag { what: "thing" }
        );
    }
}
