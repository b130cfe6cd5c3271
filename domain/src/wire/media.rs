//! What a signed envelope on a manifest topic carries: a whole segment's manifest or one
//! part's, told apart by their domain tags, under one envelope cap.

use super::codec::{Codec, Reader, WireError};
use super::envelope::{Signed, Statement};
use super::key::{KeyId, SignatureAlgorithm};
use super::part::{PartManifest, PART_TAG};
use super::segment::SegmentManifest;
use crate::DomainError;

/// Largest encoded manifest accepted in an envelope (a manifest is at most 248 bytes).
pub const MAX_MANIFEST_LEN: usize = 1024;

/// What the manifest envelope is called in errors.
pub(super) const ENVELOPE: &str = "signed manifest";
/// What the manifest inside it is called in errors.
pub(super) const FIELD: &str = "manifest";

/// What travels on a manifest topic: a segment's or a part's manifest and a signature over
/// exactly its bytes.
pub type SignedManifest = Signed<AnyManifest>;

/// What a signed manifest on a manifest topic says: a whole segment or one part of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// A segment's manifest.
    Segment(SegmentManifest),
    /// A part's manifest.
    Part(PartManifest),
}

impl AnyManifest {
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

impl SignedManifest {
    /// Decodes the manifest inside as a segment's: a part's is an error. What a catch-up
    /// push carries, where only a segment may stand.
    pub fn segment(&self) -> Result<SegmentManifest, DomainError> {
        SegmentManifest::decode(&self.statement_bytes)
    }
}

impl Codec for AnyManifest {
    const WHAT: &'static str = "segment or part manifest";

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

impl Statement for AnyManifest {
    const WRONG_TAG: DomainError = DomainError::WrongManifestTag;
    const ENVELOPE: &'static str = ENVELOPE;
    const FIELD: &'static str = FIELD;
    const MAX_LEN: usize = MAX_MANIFEST_LEN;

    /// Decoded as the statement its tag names, so errors name a segment's or a part's
    /// manifest, as they would decoded alone.
    fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        if bytes.starts_with(PART_TAG) {
            PartManifest::decode(bytes).map(Self::Part)
        } else {
            SegmentManifest::decode(bytes).map(Self::Segment)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::segment::tests::{manifest, sample};
    use crate::wire::MAX_SIGNATURE_LEN;
    use proptest::prelude::*;

    fn envelope() -> impl Strategy<Value = SignedManifest> {
        (
            manifest(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_SIGNATURE_LEN),
        )
            .prop_map(|(m, signature)| SignedManifest::new(m.encode(), signature))
    }

    proptest! {
        #[test]
        fn envelopes_round_trip(e in envelope()) {
            prop_assert_eq!(SignedManifest::decode(&e.encode()), Ok(e.clone()));
            let segment = SegmentManifest::decode(&e.statement_bytes);
            prop_assert_eq!(segment.map(|m| m.encode()), Ok(e.statement_bytes));
        }
    }

    fn envelope_bytes(manifest: &[u8], signature: &[u8]) -> Vec<u8> {
        SignedManifest::new(manifest.to_vec(), signature.to_vec()).encode()
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
        let e = SignedManifest::new(vec![1; MAX_MANIFEST_LEN], vec![2; MAX_SIGNATURE_LEN]);
        assert_eq!(SignedManifest::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn oversized_envelope_parts_are_refused_before_copying() {
        let too_large = |field, len: usize, max| DomainError::TooLarge {
            what: "signed manifest",
            field,
            len: len as u64,
            max,
        };
        // The length prefix alone is enough: no bytes follow it.
        let huge = u32::MAX.to_be_bytes();
        assert_eq!(
            SignedManifest::decode(&huge),
            Err(too_large("manifest", u32::MAX as usize, MAX_MANIFEST_LEN))
        );
        let bytes = envelope_bytes(&[1; MAX_MANIFEST_LEN + 1], b"");
        assert_eq!(
            SignedManifest::decode(&bytes),
            Err(too_large(
                "manifest",
                MAX_MANIFEST_LEN + 1,
                MAX_MANIFEST_LEN
            ))
        );
        let bytes = envelope_bytes(b"m", &[2; MAX_SIGNATURE_LEN + 1]);
        assert_eq!(
            SignedManifest::decode(&bytes),
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
            (0, "manifest"),
            (3, "manifest"),
            (5, "manifest"),
            (6, "signature"),
            (9, "signature"),
            (12, "signature"),
        ] {
            assert_eq!(
                SignedManifest::decode(&good[..len]),
                Err(DomainError::Truncated {
                    what: "signed manifest",
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
            SignedManifest::decode(&bytes),
            Err(DomainError::TrailingBytes {
                what: "signed manifest",
                count: 1
            })
        );
    }

    #[test]
    fn an_envelope_around_garbage_decodes_but_its_manifest_does_not() {
        let e = SignedManifest::decode(&envelope_bytes(b"not a manifest", b"sig"))
            .expect("a well-formed envelope");
        assert_eq!(e.statement(), Err(DomainError::WrongManifestTag));
        // Read through the codec as well: the same bytes, the same value.
        let m = sample();
        assert_eq!(
            AnyManifest::from_bytes(&m.encode()),
            Ok(AnyManifest::Segment(m.clone()))
        );
        assert_eq!(AnyManifest::Segment(m.clone()).to_bytes(), m.encode());
    }
}
