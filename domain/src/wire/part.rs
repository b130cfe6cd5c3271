//! The statement of one LL-HLS partial segment, signed like a segment's and told apart from
//! it by its own domain tag.

use super::codec::{put_name, Codec, Reader, WireError};
use super::envelope::Statement;
use super::key::{KeyId, SignatureAlgorithm};
use super::segment::{ENVELOPE, FIELD, MAX_MEDIA_STATEMENT_LEN};
use crate::segment::PartMeta;
use crate::{DomainError, RenditionName, SessionId, StreamName};

/// Domain-separation tag of a part statement ([`PartStatement`]): a part's signature can
/// never be read as a segment's, nor the other way round. The tag keeps the old word,
/// `manifest`; it is wire.
pub const PART_TAG: &[u8] = b"sealcast/v1/part-manifest\0";

/// Everything a signature binds about one LL-HLS partial segment: the fields of a
/// [`super::SegmentStatement`] plus the part's index within its segment and whether it
/// starts with a keyframe (`INDEPENDENT=YES`), and when its first frame was captured
/// (`EXT-X-PROGRAM-DATE-TIME`). Its layout is the segment statement's with the tag
/// [`PART_TAG`], then after the media sequence: part index (4 bytes), independent (1 byte,
/// `0` or `1`); after the duration: the capture time in Unix milliseconds (8 bytes).
/// Strict in the same way: one encoding per statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartStatement {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key.
    pub key_id: KeyId,
    /// The stream.
    pub stream: StreamName,
    /// The publish session.
    pub session: SessionId,
    /// The rendition.
    pub rendition: RenditionName,
    /// Media sequence number of the segment the part belongs to.
    pub sequence: u64,
    /// The part's index within its segment, from 0.
    pub index: u32,
    /// Whether the part starts with a keyframe.
    pub independent: bool,
    /// Discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// When its first frame was captured, Unix milliseconds (the ingest's clock).
    pub program_date_time_ms: u64,
    /// Length of the part's bytes.
    pub byte_len: u64,
    /// SHA-256 of the exact bytes edges serve.
    pub digest: [u8; 32],
}

impl PartStatement {
    /// The statement of the part described by `meta`, whose bytes are `byte_len` long and
    /// hash to `digest`. Ingest and edge both build it this way.
    pub fn from_meta(
        meta: &PartMeta,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        byte_len: u64,
        digest: [u8; 32],
    ) -> Self {
        PartStatement {
            algorithm,
            key_id,
            stream: meta.stream.clone(),
            session: meta.session,
            rendition: meta.rendition.clone(),
            sequence: meta.sequence,
            index: meta.index,
            independent: meta.independent,
            discontinuity_sequence: meta.discontinuity_sequence,
            duration_us: u64::try_from(meta.duration.as_micros()).unwrap_or(u64::MAX),
            program_date_time_ms: meta.program_date_time_ms,
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

impl Codec for PartStatement {
    const WHAT: &'static str = "part statement";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(PART_TAG);
        self.algorithm.write(out);
        self.key_id.write(out);
        put_name(out, self.stream.as_str());
        out.extend_from_slice(&self.session.0.to_be_bytes());
        put_name(out, self.rendition.as_str());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.push(u8::from(self.independent));
        for n in [
            self.discontinuity_sequence,
            self.duration_us,
            self.program_date_time_ms,
            self.byte_len,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.digest);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.tag(PART_TAG)?;
        Ok(PartStatement {
            algorithm: r.read()?,
            key_id: r.read()?,
            stream: r.name("stream name", StreamName::new)?,
            session: SessionId(r.u64("publish session")?),
            rendition: r.name("rendition name", RenditionName::new)?,
            sequence: r.u64("media sequence")?,
            index: r.u32("part index")?,
            independent: r.flag("independent")?,
            discontinuity_sequence: r.u64("discontinuity sequence")?,
            duration_us: r.u64("duration")?,
            program_date_time_ms: r.u64("program date-time")?,
            byte_len: r.u64("byte length")?,
            digest: r.array("digest")?,
        })
    }
}

impl Statement for PartStatement {
    const WRONG_TAG: DomainError = DomainError::WrongMediaTag;
    const ENVELOPE: &'static str = ENVELOPE;
    const FIELD: &'static str = FIELD;
    const MAX_LEN: usize = MAX_MEDIA_STATEMENT_LEN;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::segment::tests::statement;
    use crate::wire::{MediaStatement, SegmentStatement, Signed};
    use proptest::prelude::*;
    use proptest::sample::Index;

    fn part_statement() -> impl Strategy<Value = PartStatement> {
        (statement(), any::<u32>(), any::<bool>()).prop_map(|(m, index, independent)| {
            PartStatement {
                algorithm: m.algorithm,
                key_id: m.key_id,
                stream: m.stream,
                session: m.session,
                rendition: m.rendition,
                sequence: m.sequence,
                index,
                independent,
                discontinuity_sequence: m.discontinuity_sequence,
                duration_us: m.duration_us,
                program_date_time_ms: m.digest[0].into(),
                byte_len: m.byte_len,
                digest: m.digest,
            }
        })
    }

    proptest! {
        /// A part statement round-trips, is told apart from a segment statement by its tag
        /// alone, and any change to its bytes is refused or decodes to another statement.
        #[test]
        fn part_statements_round_trip_and_never_pass_for_segments(
            m in part_statement(),
            seg in statement(),
            flip in any::<Index>(),
        ) {
            let bytes = m.encode();
            prop_assert!(bytes.len() <= MAX_MEDIA_STATEMENT_LEN);
            prop_assert_eq!(PartStatement::decode(&bytes), Ok(m.clone()));
            prop_assert!(SegmentStatement::decode(&bytes).is_err());
            prop_assert!(PartStatement::decode(&seg.encode()).is_err());
            let envelope = Signed::<MediaStatement>::new(bytes.clone(), vec![1]);
            prop_assert_eq!(envelope.statement(), Ok(MediaStatement::Part(m.clone())));
            let envelope = Signed::<MediaStatement>::new(seg.encode(), vec![1]);
            prop_assert_eq!(envelope.statement(), Ok(MediaStatement::Segment(seg)));
            let mut changed = bytes.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            if let Ok(other) = PartStatement::decode(&changed) {
                prop_assert_ne!(other, m);
            }
        }
    }

    /// The layout is a wire format that signatures depend on: pin it byte for byte.
    #[test]
    fn encoding_is_pinned() {
        let part = PartStatement {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: KeyId([7; 16]),
            stream: StreamName::new("cam1").expect("valid"),
            session: SessionId(42),
            rendition: RenditionName::new("720p").expect("valid"),
            sequence: 9,
            index: 2,
            independent: true,
            discontinuity_sequence: 1,
            duration_us: 333_333,
            program_date_time_ms: 1_800_000_000_123,
            byte_len: 1000,
            digest: [3; 32],
        };
        let want: Vec<u8> = [
            &b"sealcast/v1/part-manifest\0"[..],
            &[2],                                        // Ed25519
            &[7; 16],                                    // key id
            &[4],                                        // stream length
            b"cam1",                                     // stream
            &[0, 0, 0, 0, 0, 0, 0, 42],                  // session
            &[4],                                        // rendition length
            b"720p",                                     // rendition
            &[0, 0, 0, 0, 0, 0, 0, 9],                   // media sequence
            &[0, 0, 0, 2],                               // part index
            &[1],                                        // independent
            &[0, 0, 0, 0, 0, 0, 0, 1],                   // discontinuity sequence
            &[0, 0, 0, 0, 0, 0x05, 0x16, 0x15],          // 333 333 µs
            &[0, 0, 0x01, 0xa3, 0x18, 0x5c, 0x50, 0x7b], // 1 800 000 000 123 ms
            &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],             // 1000 bytes
            &[3; 32],                                    // digest
        ]
        .concat();
        assert_eq!(part.encode(), want);
        assert_eq!(PartStatement::decode(&want), Ok(part));
        let mut flag = want.clone();
        flag[PART_TAG.len() + 1 + 16 + 5 + 8 + 5 + 8 + 4] = 2;
        assert_eq!(
            PartStatement::decode(&flag),
            Err(DomainError::InvalidFlag {
                what: "part statement",
                field: "independent"
            })
        );
    }
}
