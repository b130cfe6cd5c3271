//! The canonical segment statement an ingest signs and every edge verifies.
//!
//! The layout is fixed and unambiguous: a domain-separation tag, then every field in a fixed
//! order, integers big-endian, names prefixed by their one-byte length (names are 1 to 64
//! bytes by construction), no optional fields:
//!
//! | field | bytes |
//! |---|---|
//! | tag [`SEGMENT_TAG`] | 29 |
//! | algorithm ([`SignatureAlgorithm::code`]) | 1 |
//! | key id | 16 |
//! | stream: length, then ASCII | 1 + 1..=64 |
//! | publish session | 8 |
//! | rendition: length, then ASCII | 1 + 1..=64 |
//! | media sequence | 8 |
//! | discontinuity sequence | 8 |
//! | duration in microseconds | 8 |
//! | byte length | 8 |
//! | SHA-256 digest | 32 |
//!
//! Decoding is strict (anything but exactly this is an error, never a panic), so the same
//! statement always encodes to the same bytes, two different statements never do, and bytes
//! that decode re-encode to themselves: a signature over the bytes binds every field.
//! No cryptography lives here: the digest is just bytes, signing happens elsewhere.

use super::codec::{put_name, Codec, Reader, WireError};
use super::envelope::Statement;
use super::key::{KeyId, SignatureAlgorithm};
use crate::{DomainError, RenditionName, SegmentMeta, SessionId, StreamName};

/// Domain-separation tag: a signature over a segment statement can never be mistaken for a
/// signature over anything else the cluster signs. The tag keeps the old word,
/// `manifest`; it is wire (every signature ever made binds it).
pub const SEGMENT_TAG: &[u8] = b"sealcast/v1/segment-manifest\0";

/// Largest encoded segment or part statement accepted in an envelope (a segment's is at
/// most 248 bytes, a part's 258: docs/wire.md). Here rather than beside
/// [`super::MediaStatement`], which carries either, so that the part's file needs only this
/// one and no file of the folder imports one that imports it.
pub const MAX_MEDIA_STATEMENT_LEN: usize = 1024;

/// What the envelope of a segment's or a part's statement is called in errors.
pub(super) const ENVELOPE: &str = "signed media statement";
/// What the statement inside it is called in errors.
pub(super) const FIELD: &str = "statement";

/// Everything a signature binds about one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStatement {
    /// The signature scheme, bound so a signature cannot be re-read under a weaker one.
    pub algorithm: SignatureAlgorithm,
    /// The signing key, so an edge knows which certificate to check it against.
    pub key_id: KeyId,
    /// The stream.
    pub stream: StreamName,
    /// The publish session, so segments of an earlier session cannot be replayed into a
    /// later one.
    pub session: SessionId,
    /// The rendition.
    pub rendition: RenditionName,
    /// Media sequence number.
    pub sequence: u64,
    /// Discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Length of the segment's bytes.
    pub byte_len: u64,
    /// SHA-256 of the exact bytes edges serve.
    pub digest: [u8; 32],
}

impl SegmentStatement {
    /// The statement of a segment described by `meta` whose bytes are `byte_len` long and
    /// hash to `digest`. Ingest and edge both build it this way, so they agree on it.
    ///
    /// Not bound: `start_pts_90k`, and the `discontinuity` flag, which follows from a change
    /// of `discontinuity_sequence`.
    pub fn from_meta(
        meta: &SegmentMeta,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        byte_len: u64,
        digest: [u8; 32],
    ) -> Self {
        SegmentStatement {
            algorithm,
            key_id,
            stream: meta.stream.clone(),
            session: meta.session,
            rendition: meta.rendition.clone(),
            sequence: meta.sequence,
            discontinuity_sequence: meta.discontinuity_sequence,
            // u64 microseconds last 584,000 years; saturating is never reached in practice.
            duration_us: u64::try_from(meta.duration.as_micros()).unwrap_or(u64::MAX),
            byte_len,
            digest,
        }
    }

    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        <Self as Statement>::decode(bytes)
    }
}

impl Codec for SegmentStatement {
    const WHAT: &'static str = "segment statement";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SEGMENT_TAG);
        self.algorithm.write(out);
        self.key_id.write(out);
        put_name(out, self.stream.as_str());
        out.extend_from_slice(&self.session.0.to_be_bytes());
        put_name(out, self.rendition.as_str());
        for n in [
            self.sequence,
            self.discontinuity_sequence,
            self.duration_us,
            self.byte_len,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.digest);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.tag(SEGMENT_TAG)?;
        Ok(SegmentStatement {
            algorithm: r.read()?,
            key_id: r.read()?,
            stream: r.name("stream name", StreamName::new)?,
            session: SessionId(r.u64("publish session")?),
            rendition: r.name("rendition name", RenditionName::new)?,
            sequence: r.u64("media sequence")?,
            discontinuity_sequence: r.u64("discontinuity sequence")?,
            duration_us: r.u64("duration")?,
            byte_len: r.u64("byte length")?,
            digest: r.array("digest")?,
        })
    }
}

impl Statement for SegmentStatement {
    const WRONG_TAG: DomainError = DomainError::WrongMediaTag;
    const ENVELOPE: &'static str = ENVELOPE;
    const FIELD: &'static str = FIELD;
    const MAX_LEN: usize = MAX_MEDIA_STATEMENT_LEN;
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const NAME: &str = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}";

    pub(crate) fn algorithm() -> impl Strategy<Value = SignatureAlgorithm> {
        prop_oneof![
            Just(SignatureAlgorithm::MlDsa65),
            Just(SignatureAlgorithm::Ed25519)
        ]
    }

    pub(crate) fn statement() -> impl Strategy<Value = SegmentStatement> {
        (
            algorithm(),
            any::<[u8; 16]>(),
            NAME,
            any::<u64>(),
            NAME,
            any::<[u64; 4]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(algorithm, key, stream, session, rendition, n, digest)| {
                SegmentStatement {
                    algorithm,
                    key_id: KeyId(key),
                    stream: StreamName::new(stream).expect("valid"),
                    session: SessionId(session),
                    rendition: RenditionName::new(rendition).expect("valid"),
                    sequence: n[0],
                    discontinuity_sequence: n[1],
                    duration_us: n[2],
                    byte_len: n[3],
                    digest,
                }
            })
    }

    /// `name` if it differs from `old`, else `old` with another first character.
    fn differing(name: &str, old: &str) -> String {
        if name != old {
            return name.to_owned();
        }
        let first = if old.starts_with('a') { 'b' } else { 'a' };
        format!("{first}{}", &old[1..])
    }

    /// `m` with field number `field` (0..10, in layout order) changed, taking the new value
    /// from `other` where that differs.
    fn change(m: &SegmentStatement, other: &SegmentStatement, field: usize) -> SegmentStatement {
        let mut n = m.clone();
        match field {
            0 => {
                n.algorithm = match m.algorithm {
                    SignatureAlgorithm::MlDsa65 => SignatureAlgorithm::Ed25519,
                    SignatureAlgorithm::Ed25519 => SignatureAlgorithm::MlDsa65,
                }
            }
            1 => n.key_id.0[15] ^= 1,
            2 => {
                let s = differing(other.stream.as_str(), m.stream.as_str());
                n.stream = StreamName::new(s).expect("valid");
            }
            3 => n.session.0 ^= 1,
            4 => {
                let r = differing(other.rendition.as_str(), m.rendition.as_str());
                n.rendition = RenditionName::new(r).expect("valid");
            }
            5 => n.sequence ^= 1 << 63,
            6 => n.discontinuity_sequence ^= 1,
            7 => n.duration_us ^= 1,
            8 => n.byte_len ^= 1,
            _ => n.digest[0] ^= 0x80,
        }
        n
    }

    proptest! {
        #[test]
        fn statements_round_trip(m in statement()) {
            let bytes = m.encode();
            prop_assert!(bytes.len() <= MAX_MEDIA_STATEMENT_LEN);
            prop_assert_eq!(SegmentStatement::decode(&bytes), Ok(m));
        }

        #[test]
        fn distinct_statements_encode_differently(a in statement(), b in statement()) {
            prop_assert_eq!(a == b, a.encode() == b.encode());
        }

        #[test]
        fn changing_any_one_field_changes_the_bytes(
            m in statement(),
            other in statement(),
            field in 0usize..10,
        ) {
            let n = change(&m, &other, field);
            prop_assert_ne!(&m, &n);
            prop_assert_ne!(m.encode(), n.encode());
            prop_assert_eq!(SegmentStatement::decode(&n.encode()), Ok(n));
        }

        /// Characters cannot move between the two names: the length prefixes tell them apart.
        #[test]
        fn names_cannot_shift_between_fields(
            m in statement(),
            joined in "[a-z0-9]{2,64}",
            a in any::<Index>(),
            b in any::<Index>(),
        ) {
            let (a, b) = (1 + a.index(joined.len() - 1), 1 + b.index(joined.len() - 1));
            prop_assume!(a != b);
            let split = |at: usize| {
                let mut n = m.clone();
                n.stream = StreamName::new(&joined[..at]).expect("valid");
                n.rendition = RenditionName::new(&joined[at..]).expect("valid");
                n.encode()
            };
            prop_assert_ne!(split(a), split(b));
        }

        /// Bytes that decode are canonical: they are exactly the encoding of what they decode to.
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
            if let Ok(n) = SegmentStatement::decode(&bytes) {
                prop_assert_eq!(n.encode(), bytes);
            }
        }

        /// Garbage right after a valid tag reaches every field decoder, not just the tag check.
        #[test]
        fn decoding_garbage_after_the_tag_never_panics(
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let bytes = [SEGMENT_TAG, &tail].concat();
            if let Ok(m) = SegmentStatement::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }
    }

    pub(crate) fn sample() -> SegmentStatement {
        SegmentStatement {
            algorithm: SignatureAlgorithm::MlDsa65,
            key_id: KeyId([7; 16]),
            stream: StreamName::new("cam1").expect("valid"),
            session: SessionId(42),
            rendition: RenditionName::new("720p").expect("valid"),
            sequence: 9,
            discontinuity_sequence: 1,
            duration_us: 2_000_000,
            byte_len: 1000,
            digest: [3; 32],
        }
    }

    /// Offset of the stream name's length byte in an encoding.
    const STREAM_AT: usize = 29 + 1 + 16;
    /// Offset of the rendition name's length byte in `sample().encode()`.
    const RENDITION_AT: usize = STREAM_AT + 1 + 4 + 8;

    fn truncated(field: &'static str) -> DomainError {
        DomainError::Truncated {
            what: "segment statement",
            field,
        }
    }

    /// The layout is a wire format that signatures depend on: pin it byte for byte.
    #[test]
    fn encoding_is_pinned() {
        let want: Vec<u8> = [
            &b"sealcast/v1/segment-manifest\0"[..],
            &[1],                               // ML-DSA-65
            &[7; 16],                           // key id
            &[4],                               // stream length
            b"cam1",                            // stream
            &[0, 0, 0, 0, 0, 0, 0, 42],         // session
            &[4],                               // rendition length
            b"720p",                            // rendition
            &[0, 0, 0, 0, 0, 0, 0, 9],          // media sequence
            &[0, 0, 0, 0, 0, 0, 0, 1],          // discontinuity sequence
            &[0, 0, 0, 0, 0, 0x1e, 0x84, 0x80], // 2 000 000 µs
            &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],    // 1000 bytes
            &[3; 32],                           // digest
        ]
        .concat();
        assert_eq!(SEGMENT_TAG.len(), 29);
        assert_eq!(sample().encode(), want);
        assert_eq!(want[STREAM_AT], 4);
        assert_eq!(want[RENDITION_AT], 4);
    }

    #[test]
    fn the_largest_statement_fits_the_envelope_cap() {
        let mut m = sample();
        m.stream = StreamName::new("s".repeat(64)).expect("valid");
        m.rendition = RenditionName::new("r".repeat(64)).expect("valid");
        assert_eq!(m.encode().len(), 248);
        assert!(m.encode().len() <= MAX_MEDIA_STATEMENT_LEN);
    }

    #[test]
    fn from_meta_takes_every_field_it_binds() {
        let meta = SegmentMeta {
            stream: StreamName::new("cam1").expect("valid"),
            rendition: RenditionName::new("720p").expect("valid"),
            session: SessionId(42),
            sequence: 9,
            discontinuity_sequence: 1,
            discontinuity: true,
            duration: Duration::from_micros(2_000_000),
            start_pts_90k: 123,
        };
        let m = SegmentStatement::from_meta(
            &meta,
            SignatureAlgorithm::MlDsa65,
            KeyId([7; 16]),
            1000,
            [3; 32],
        );
        assert_eq!(m, sample());
    }

    #[test]
    fn wrong_tag() {
        let mut bytes = sample().encode();
        bytes[0] ^= 1;
        assert_eq!(
            SegmentStatement::decode(&bytes),
            Err(DomainError::WrongMediaTag)
        );
        // Another version, and a short payload that is plainly something else.
        let v2 = [&b"sealcast/v2/segment-manifest\0"[..], &bytes[29..]].concat();
        assert_eq!(
            SegmentStatement::decode(&v2),
            Err(DomainError::WrongMediaTag)
        );
        assert_eq!(
            SegmentStatement::decode(b"{}"),
            Err(DomainError::WrongMediaTag)
        );
    }

    #[test]
    fn unknown_algorithm() {
        for code in [0, 3, 0xff] {
            let mut bytes = sample().encode();
            bytes[SEGMENT_TAG.len()] = code;
            assert_eq!(
                SegmentStatement::decode(&bytes),
                Err(DomainError::UnknownSignatureAlgorithm { code })
            );
        }
    }

    /// `sample()` with the stream name's bytes (after its length byte) replaced by `name`.
    fn with_raw_name(at: usize, name: &[u8]) -> Vec<u8> {
        let good = sample().encode();
        let len = u8::try_from(name.len()).expect("short");
        [&good[..at], &[len], name, &good[at + 1 + 4..]].concat()
    }

    #[test]
    fn invalid_names() {
        for (at, kind) in [(STREAM_AT, "stream name"), (RENDITION_AT, "rendition name")] {
            for name in [
                &b""[..],
                b"a/b",
                b"a+",
                b"#",
                b"-leading-dash",
                b"caf\xc3\xa9",  // UTF-8, not ASCII
                b"\xff\xfe",     // not UTF-8
                &[b'a'; 65][..], // one byte too long
            ] {
                match SegmentStatement::decode(&with_raw_name(at, name)) {
                    Err(DomainError::InvalidName { kind: k, .. }) => {
                        assert_eq!(k, kind, "{name:?}")
                    }
                    other => panic!("{kind} {name:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = sample().encode();
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(
            SegmentStatement::decode(&bytes),
            Err(DomainError::TrailingBytes {
                what: "segment statement",
                count: 2
            })
        );
    }

    #[test]
    fn every_truncation_is_reported_as_such() {
        let good = sample().encode();
        for len in 0..good.len() {
            assert!(
                matches!(
                    SegmentStatement::decode(&good[..len]),
                    Err(DomainError::Truncated {
                        what: "segment statement",
                        ..
                    })
                ),
                "{len}"
            );
        }
        for (len, field) in [
            (0, "domain tag"),
            (28, "domain tag"),
            (29, "algorithm"),
            (STREAM_AT, "stream name"),
            (STREAM_AT + 3, "stream name"),
            (RENDITION_AT - 1, "publish session"),
            (RENDITION_AT + 2, "rendition name"),
            (good.len() - 33, "byte length"),
            (good.len() - 1, "digest"),
        ] {
            assert_eq!(
                SegmentStatement::decode(&good[..len]),
                Err(truncated(field)),
                "{len}"
            );
        }
    }
}
