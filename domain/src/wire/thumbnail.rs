//! The statement an ingest signs per thumbnail (a still JPEG of a live stream), and every
//! edge and viewer verifies before showing it.
//!
//! | field | bytes |
//! |---|---|
//! | tag [`THUMBNAIL_TAG`] | 22 |
//! | algorithm ([`SignatureAlgorithm::code`]) | 1 |
//! | key id | 16 |
//! | stream: length, then ASCII | 1 + 1..=64 |
//! | publish session | 8 |
//! | media sequence of the segment the picture is in | 8 |
//! | captured at, Unix milliseconds | 8 |
//! | width, pixels | 4 |
//! | height, pixels | 4 |
//! | byte length, at most [`MAX_THUMBNAIL_BYTES`] | 8 |
//! | SHA-256 of the JPEG | 32 |
//!
//! Its own tag, so a thumbnail's signature never passes for a segment's, a part's or
//! anything else's, nor theirs for a thumbnail's. Decoding is strict like every statement's:
//! one encoding per value, no trailing bytes, a byte length over the cap refused.

use super::codec::{put_name, Codec, Reader, WireError};
use super::envelope::{Signed, Statement};
use super::key::{KeyId, SignatureAlgorithm};
use crate::thumbnail::{ThumbnailMeta, MAX_THUMBNAIL_BYTES};
use crate::{DomainError, SessionId, StreamName};

/// Domain-separation tag of a thumbnail statement.
pub const THUMBNAIL_TAG: &[u8] = b"sealcast/v1/thumbnail\0";

/// Largest thumbnail statement an envelope accepts (the largest is 176 bytes).
pub const MAX_THUMBNAIL_STATEMENT_LEN: usize = 1024;

/// A thumbnail's statement and a signature over exactly its bytes: the body of
/// `thumbnail.jpg.sig`, and what a thumbnail push carries in its statement header.
pub type SignedThumbnail = Signed<ThumbnailStatement>;

/// Everything a signature binds about one thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailStatement {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key (a certified ingest key).
    pub key_id: KeyId,
    /// The stream it shows.
    pub stream: StreamName,
    /// The publish session, so a thumbnail of one session is never shown for another.
    pub session: SessionId,
    /// Media sequence of the segment the picture belongs to (orders a session's thumbnails).
    pub sequence: u64,
    /// Capture time, Unix milliseconds.
    pub captured_ms: u64,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Length of the JPEG, at most [`MAX_THUMBNAIL_BYTES`].
    pub byte_len: u64,
    /// SHA-256 of the JPEG's bytes, exactly as served.
    pub digest: [u8; 32],
}

impl ThumbnailStatement {
    /// The statement of a thumbnail described by `meta` whose JPEG is `byte_len` long and
    /// hashes to `digest`.
    pub fn from_meta(
        meta: &ThumbnailMeta,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        byte_len: u64,
        digest: [u8; 32],
    ) -> Self {
        ThumbnailStatement {
            algorithm,
            key_id,
            stream: meta.stream.clone(),
            session: meta.session,
            sequence: meta.sequence,
            captured_ms: meta.captured_ms,
            width: meta.width,
            height: meta.height,
            byte_len,
            digest,
        }
    }

    /// What the statement says about the thumbnail, without the key and the digest.
    pub fn meta(&self) -> ThumbnailMeta {
        ThumbnailMeta {
            stream: self.stream.clone(),
            session: self.session,
            sequence: self.sequence,
            captured_ms: self.captured_ms,
            width: self.width,
            height: self.height,
        }
    }

    /// Whether `later` comes after this one in its session's order (sequence, then capture
    /// time): what an edge replaces its thumbnail with.
    pub fn precedes(&self, later: &ThumbnailStatement) -> bool {
        (self.sequence, self.captured_ms) < (later.sequence, later.captured_ms)
    }

    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Parses canonical bytes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        <Self as Statement>::decode(bytes)
    }
}

impl Codec for ThumbnailStatement {
    const WHAT: &'static str = "thumbnail statement";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(THUMBNAIL_TAG);
        self.algorithm.write(out);
        self.key_id.write(out);
        put_name(out, self.stream.as_str());
        for n in [self.session.0, self.sequence, self.captured_ms] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.byte_len.to_be_bytes());
        out.extend_from_slice(&self.digest);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.tag(THUMBNAIL_TAG)?;
        let algorithm = r.read()?;
        let key_id = r.read()?;
        let stream = r.name("stream name", StreamName::new)?;
        let session = SessionId(r.u64("publish session")?);
        let sequence = r.u64("media sequence")?;
        let captured_ms = r.u64("capture time")?;
        let width = r.u32("width")?;
        let height = r.u32("height")?;
        let byte_len = r.u64("byte length")?;
        if byte_len > MAX_THUMBNAIL_BYTES as u64 {
            return Err(WireError::TooLarge {
                what: r.what(),
                field: "byte length",
                len: byte_len,
                max: MAX_THUMBNAIL_BYTES,
            });
        }
        Ok(ThumbnailStatement {
            algorithm,
            key_id,
            stream,
            session,
            sequence,
            captured_ms,
            width,
            height,
            byte_len,
            digest: r.array("digest")?,
        })
    }
}

impl Statement for ThumbnailStatement {
    const ENVELOPE: &'static str = "signed thumbnail statement";
    const FIELD: &'static str = "statement";
    const MAX_LEN: usize = MAX_THUMBNAIL_STATEMENT_LEN;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::segment::tests::algorithm;
    use crate::wire::{PartStatement, SegmentStatement, SEGMENT_TAG};
    use proptest::prelude::*;
    use proptest::sample::Index;

    const NAME: &str = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}";

    pub(crate) fn statement() -> impl Strategy<Value = ThumbnailStatement> {
        (
            algorithm(),
            any::<[u8; 16]>(),
            NAME,
            any::<[u64; 3]>(),
            any::<[u32; 2]>(),
            0..=MAX_THUMBNAIL_BYTES as u64,
            any::<[u8; 32]>(),
        )
            .prop_map(|(algorithm, key, stream, n, size, byte_len, digest)| {
                ThumbnailStatement {
                    algorithm,
                    key_id: KeyId(key),
                    stream: StreamName::new(stream).expect("valid"),
                    session: SessionId(n[0]),
                    sequence: n[1],
                    captured_ms: n[2],
                    width: size[0],
                    height: size[1],
                    byte_len,
                    digest,
                }
            })
    }

    pub(crate) fn sample() -> ThumbnailStatement {
        ThumbnailStatement {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: KeyId([7; 16]),
            stream: StreamName::new("cam1").expect("valid"),
            session: SessionId(42),
            sequence: 9,
            captured_ms: 1_700_000_000_000,
            width: 320,
            height: 180,
            byte_len: 1000,
            digest: [3; 32],
        }
    }

    /// `m` with field number `field` (0..10, in layout order) changed.
    fn change(m: &ThumbnailStatement, field: usize) -> ThumbnailStatement {
        let mut n = m.clone();
        match field {
            0 => {
                n.algorithm = match m.algorithm {
                    SignatureAlgorithm::MlDsa65 => SignatureAlgorithm::Ed25519,
                    SignatureAlgorithm::Ed25519 => SignatureAlgorithm::MlDsa65,
                }
            }
            1 => n.key_id.0[0] ^= 1,
            2 => {
                let first = if m.stream.as_str().starts_with('a') {
                    'b'
                } else {
                    'a'
                };
                let s = format!("{first}{}", &m.stream.as_str()[1..]);
                n.stream = StreamName::new(s).expect("valid");
            }
            3 => n.session.0 ^= 1,
            4 => n.sequence ^= 1 << 63,
            5 => n.captured_ms ^= 1,
            6 => n.width ^= 1,
            7 => n.height ^= 1,
            8 => n.byte_len ^= 1,
            _ => n.digest[31] ^= 0x80,
        }
        n
    }

    proptest! {
        #[test]
        fn statements_round_trip(m in statement()) {
            let bytes = m.encode();
            prop_assert!(bytes.len() <= MAX_THUMBNAIL_STATEMENT_LEN);
            prop_assert_eq!(ThumbnailStatement::decode(&bytes), Ok(m));
        }

        #[test]
        fn changing_any_one_field_changes_the_bytes(m in statement(), field in 0usize..10) {
            let n = change(&m, field);
            prop_assume!(n.byte_len <= MAX_THUMBNAIL_BYTES as u64);
            prop_assert_ne!(m.encode(), n.encode());
            prop_assert_eq!(ThumbnailStatement::decode(&n.encode()), Ok(n));
        }

        /// Bytes that decode are exactly the encoding of what they decode to.
        #[test]
        fn altered_bytes_decode_only_to_their_own_encoding(
            m in statement(),
            at in any::<Index>(),
            byte in any::<u8>(),
            insert in any::<bool>(),
        ) {
            let mut bytes = m.encode();
            let at = at.index(bytes.len());
            if insert {
                bytes.insert(at, byte);
            } else {
                bytes[at] = byte;
            }
            if let Ok(n) = ThumbnailStatement::decode(&bytes) {
                prop_assert_eq!(n.encode(), bytes);
            }
        }

        /// Garbage after the tag reaches every field decoder and never panics.
        #[test]
        fn decoding_garbage_after_the_tag_never_panics(
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let bytes = [THUMBNAIL_TAG, &tail].concat();
            if let Ok(m) = ThumbnailStatement::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
            let _ = SignedThumbnail::decode(&tail);
        }

        /// A thumbnail statement is never a segment's or a part's, and neither of theirs
        /// is a thumbnail's: the tags keep them apart whatever follows.
        #[test]
        fn kinds_never_cross(
            m in statement(),
            s in crate::wire::segment::tests::statement(),
        ) {
            prop_assert!(SegmentStatement::decode(&m.encode()).is_err());
            prop_assert!(PartStatement::decode(&m.encode()).is_err());
            prop_assert!(ThumbnailStatement::decode(&s.encode()).is_err());
            let retagged = [THUMBNAIL_TAG, &s.encode()[SEGMENT_TAG.len()..]].concat();
            // Even a segment's fields under this tag are not a thumbnail's statement
            // unless they happen to fit its layout exactly, and then they re-encode alike.
            if let Ok(t) = ThumbnailStatement::decode(&retagged) {
                prop_assert_eq!(t.encode(), retagged);
            }
        }
    }

    /// The layout is wire: pin it byte for byte (docs/wire.md, and verify.js reads it).
    #[test]
    fn encoding_is_pinned() {
        let want: Vec<u8> = [
            &b"sealcast/v1/thumbnail\0"[..],
            &[2],                                // Ed25519
            &[7; 16],                            // key id
            &[4],                                // stream length
            b"cam1",                             // stream
            &[0, 0, 0, 0, 0, 0, 0, 42],          // session
            &[0, 0, 0, 0, 0, 0, 0, 9],           // media sequence
            &1_700_000_000_000u64.to_be_bytes(), // captured at
            &[0, 0, 1, 0x40],                    // width 320
            &[0, 0, 0, 0xb4],                    // height 180
            &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],     // 1000 bytes
            &[3; 32],                            // digest
        ]
        .concat();
        assert_eq!(THUMBNAIL_TAG.len(), 22);
        assert_eq!(sample().encode(), want);
        assert_eq!(want.len(), 116);
    }

    #[test]
    fn the_largest_statement_fits_its_cap() {
        let mut m = sample();
        m.stream = StreamName::new("s".repeat(64)).expect("valid");
        assert_eq!(m.encode().len(), 176);
        assert!(m.encode().len() <= MAX_THUMBNAIL_STATEMENT_LEN);
    }

    #[test]
    fn refusals() {
        let mut bytes = sample().encode();
        bytes[0] ^= 1;
        assert_eq!(
            ThumbnailStatement::decode(&bytes),
            Err(DomainError::WrongTag {
                what: "thumbnail statement"
            })
        );
        let mut over = sample();
        over.byte_len = MAX_THUMBNAIL_BYTES as u64 + 1;
        assert!(matches!(
            ThumbnailStatement::decode(&over.encode()),
            Err(DomainError::TooLarge {
                field: "byte length",
                ..
            })
        ));
        let mut trailing = sample().encode();
        trailing.push(0);
        assert!(matches!(
            ThumbnailStatement::decode(&trailing),
            Err(DomainError::TrailingBytes { .. })
        ));
        let good = sample().encode();
        for len in 0..good.len() {
            assert!(
                matches!(
                    ThumbnailStatement::decode(&good[..len]),
                    Err(DomainError::Truncated { .. })
                ),
                "{len}"
            );
        }
    }

    #[test]
    fn order_within_a_session() {
        let a = sample();
        let mut b = sample();
        b.captured_ms += 1;
        assert!(a.precedes(&b) && !b.precedes(&a) && !a.precedes(&a));
        b.sequence -= 1;
        assert!(b.precedes(&a));
    }
}
