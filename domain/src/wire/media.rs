//! What a signed envelope on a statement topic carries: a whole segment's statement or one
//! part's, told apart by their domain tags, under one envelope cap.

use super::codec::{Codec, Reader, WireError};
use super::envelope::{Signed, Statement};
use super::key::{KeyId, SignatureAlgorithm};
use super::part::{PartStatement, PART_TAG};
use super::segment::{SegmentStatement, ENVELOPE, FIELD};
use crate::DomainError;

pub use super::segment::MAX_MEDIA_STATEMENT_LEN;

/// What travels on a statement topic: a segment's or a part's statement and a signature over
/// exactly its bytes.
pub type SignedMedia = Signed<MediaStatement>;

/// What a signed statement on a statement topic says: a whole segment or one part of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaStatement {
    /// A segment's statement.
    Segment(SegmentStatement),
    /// A part's statement.
    Part(PartStatement),
}

impl MediaStatement {
    /// The key that signed it.
    pub fn key_id(&self) -> KeyId {
        match self {
            Self::Segment(m) => m.key_id,
            Self::Part(m) => m.key_id,
        }
    }

    /// The scheme that signed it.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::Segment(m) => m.algorithm,
            Self::Part(m) => m.algorithm,
        }
    }
}

impl SignedMedia {
    /// Decodes the statement inside as a segment's: a part's is an error. What a catch-up
    /// push carries, where only a segment may stand.
    pub fn segment(&self) -> Result<SegmentStatement, DomainError> {
        SegmentStatement::decode(&self.statement_bytes)
    }
}

impl Codec for MediaStatement {
    const WHAT: &'static str = "segment or part statement";

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Segment(m) => m.write(out),
            Self::Part(m) => m.write(out),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        if r.starts_with(PART_TAG) {
            r.read().map(Self::Part)
        } else {
            r.read().map(Self::Segment)
        }
    }
}

impl Statement for MediaStatement {
    const WRONG_TAG: DomainError = DomainError::WrongMediaTag;
    const ENVELOPE: &'static str = ENVELOPE;
    const FIELD: &'static str = FIELD;
    const MAX_LEN: usize = MAX_MEDIA_STATEMENT_LEN;

    /// Decoded as the statement its tag names, so errors name a segment's or a part's
    /// statement, as they would decoded alone.
    fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        if bytes.starts_with(PART_TAG) {
            PartStatement::decode(bytes).map(Self::Part)
        } else {
            SegmentStatement::decode(bytes).map(Self::Segment)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::segment::tests::{sample, statement};
    use crate::wire::MAX_SIGNATURE_LEN;
    use proptest::prelude::*;

    fn envelope() -> impl Strategy<Value = SignedMedia> {
        (
            statement(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_SIGNATURE_LEN),
        )
            .prop_map(|(m, signature)| SignedMedia::new(m.encode(), signature))
    }

    proptest! {
        #[test]
        fn envelopes_round_trip(e in envelope()) {
            prop_assert_eq!(SignedMedia::decode(&e.encode()), Ok(e.clone()));
            let segment = SegmentStatement::decode(&e.statement_bytes);
            prop_assert_eq!(segment.map(|m| m.encode()), Ok(e.statement_bytes));
        }
    }

    fn envelope_bytes(statement: &[u8], signature: &[u8]) -> Vec<u8> {
        SignedMedia::new(statement.to_vec(), signature.to_vec()).encode()
    }

    #[test]
    fn envelope_layout_is_pinned() {
        assert_eq!(
            envelope_bytes(b"mm", b"sss"),
            b"\0\0\0\x02mm\0\0\0\x03sss".to_vec()
        );
    }

    #[test]
    fn envelope_parts_at_the_caps_are_accepted() {
        let e = SignedMedia::new(vec![1; MAX_MEDIA_STATEMENT_LEN], vec![2; MAX_SIGNATURE_LEN]);
        assert_eq!(SignedMedia::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn oversized_envelope_parts_are_refused_before_copying() {
        let too_large = |field, len: usize, max| DomainError::TooLarge {
            what: "signed media statement",
            field,
            len: len as u64,
            max,
        };
        // The length prefix alone is enough: no bytes follow it.
        let huge = u32::MAX.to_be_bytes();
        assert_eq!(
            SignedMedia::decode(&huge),
            Err(too_large(
                "statement",
                u32::MAX as usize,
                MAX_MEDIA_STATEMENT_LEN
            ))
        );
        let bytes = envelope_bytes(&[1; MAX_MEDIA_STATEMENT_LEN + 1], b"");
        assert_eq!(
            SignedMedia::decode(&bytes),
            Err(too_large(
                "statement",
                MAX_MEDIA_STATEMENT_LEN + 1,
                MAX_MEDIA_STATEMENT_LEN
            ))
        );
        let bytes = envelope_bytes(b"m", &[2; MAX_SIGNATURE_LEN + 1]);
        assert_eq!(
            SignedMedia::decode(&bytes),
            Err(too_large(
                "signature",
                MAX_SIGNATURE_LEN + 1,
                MAX_SIGNATURE_LEN
            ))
        );
    }

    #[test]
    fn truncated_envelopes() {
        let good = envelope_bytes(b"mm", b"sss");
        for (len, field) in [
            (0, "statement"),
            (3, "statement"),
            (5, "statement"),
            (6, "signature"),
            (9, "signature"),
            (12, "signature"),
        ] {
            assert_eq!(
                SignedMedia::decode(&good[..len]),
                Err(DomainError::Truncated {
                    what: "signed media statement",
                    field
                }),
                "{len}"
            );
        }
    }

    #[test]
    fn trailing_bytes_after_an_envelope() {
        let mut bytes = envelope_bytes(b"mm", b"sss");
        bytes.push(0);
        assert_eq!(
            SignedMedia::decode(&bytes),
            Err(DomainError::TrailingBytes {
                what: "signed media statement",
                count: 1
            })
        );
    }

    #[test]
    fn an_envelope_around_garbage_decodes_but_its_statement_does_not() {
        let e = SignedMedia::decode(&envelope_bytes(b"not a statement", b"sig"))
            .expect("a well-formed envelope");
        assert_eq!(e.statement(), Err(DomainError::WrongMediaTag));
        // Read through the codec as well: the same bytes, the same value.
        let m = sample();
        assert_eq!(
            MediaStatement::from_bytes(&m.encode()),
            Ok(MediaStatement::Segment(m.clone()))
        );
        assert_eq!(MediaStatement::Segment(m.clone()).to_bytes(), m.encode());
    }
}
