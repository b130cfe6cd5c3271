//! A part-key delegation: an ingest's certified key hands the signing of one run of LL-HLS
//! parts to a short-lived key of its own making.
//!
//! Why: a viewer fetches one signed statement per part it plays, about three a second.
//! Under ML-DSA-65 each is a 3.3 KB signature, about a tenth of the media at the 360p rung;
//! under Ed25519 it is 64 bytes. So for one (stream, session, rendition) and a run of
//! segments (about ten seconds), the ingest makes an Ed25519 key pair, signs this statement
//! with its certified key (post-quantum by default), and signs the part statements of that
//! run with the new key. Segments keep the certified key's signatures, and so do
//! recordings (parts are never recorded): what lasts stays post-quantum, and a forger of
//! a part must break Ed25519 within the run.
//!
//! | field | bytes |
//! |---|---|
//! | tag [`PART_KEY_TAG`] | 21 |
//! | signer's algorithm ([`SignatureAlgorithm::code`]) | 1 |
//! | signer's key id (the certified ingest key) | 16 |
//! | stream: length, then ASCII | 1 + 1..=64 |
//! | publish session | 8 |
//! | rendition: length, then ASCII | 1 + 1..=64 |
//! | first media sequence covered | 8 |
//! | last media sequence covered (`first ≤ last`, at most [`MAX_PART_KEY_RUN`] apart) | 8 |
//! | delegated key's algorithm | 1 |
//! | delegated public key: u32 length, then the key (at most [`MAX_DELEGATED_KEY_LEN`]) | 4 + … |
//!
//! It travels on the rendition's manifest topic, as the segment and part statements do,
//! before the first part it covers, and is told apart from them by its tag. Strict like
//! every statement here: one encoding per delegation. Whether the delegated key's bytes
//! are a key of its algorithm is the certs crate's check (it knows key lengths).

use super::codec::{put_name, put_part, Codec, Reader, WireError};
use super::envelope::{Signed, Statement, MAX_SIGNATURE_LEN};
use super::key::{KeyId, SignatureAlgorithm};
use crate::{DomainError, RenditionName, SessionId, StreamName};

/// Domain-separation tag of a part-key delegation ([`PartKeyStatement`]): no other
/// statement's signature passes for a delegation's, nor the other way round.
pub const PART_KEY_TAG: &[u8] = b"sealcast/v1/part-key\0";

/// The most segments after the first one a delegation may cover: a run is meant to be
/// seconds, and a bound keeps a stolen delegated key's reach bounded too.
pub const MAX_PART_KEY_RUN: u64 = 1024;

/// Largest delegated public key (an ML-DSA-65 key, the largest this build knows).
pub const MAX_DELEGATED_KEY_LEN: usize = 1952;

/// Largest encoded [`PartKeyStatement`]: every field at its cap.
pub const MAX_PART_KEY_LEN: usize =
    PART_KEY_TAG.len() + 1 + 16 + (1 + 64) + 8 + (1 + 64) + 8 + 8 + 1 + 4 + MAX_DELEGATED_KEY_LEN;

/// Largest encoded [`SignedPartKey`]: the statement and a signature at their caps.
pub const MAX_SIGNED_PART_KEY_LEN: usize = 8 + MAX_PART_KEY_LEN + MAX_SIGNATURE_LEN;

/// A delegation and the certified key's signature over it, as the manifest topic carries
/// it and as `/live/{stream}/{rendition}/{seq}.partkey` serves it.
pub type SignedPartKey = Signed<PartKeyStatement>;

/// What a certified ingest key says when it delegates the parts of one run: which key may
/// sign the part statements of segments `first_sequence..=last_sequence` of one stream,
/// publish session and rendition, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartKeyStatement {
    /// The scheme of the key that signs this statement (the cluster's).
    pub algorithm: SignatureAlgorithm,
    /// The certified ingest key that signs this statement.
    pub key_id: KeyId,
    /// The stream whose parts the delegated key signs.
    pub stream: StreamName,
    /// The publish session: a delegation of an earlier session covers none of a later one.
    pub session: SessionId,
    /// The rendition: a delegation covers one rendition's parts only.
    pub rendition: RenditionName,
    /// The first media sequence number whose parts it covers.
    pub first_sequence: u64,
    /// The last one (inclusive).
    pub last_sequence: u64,
    /// The delegated key's scheme (Ed25519 from this build's ingests).
    pub delegated_algorithm: SignatureAlgorithm,
    /// The delegated public key's canonical bytes.
    pub delegated_key: Vec<u8>,
}

impl PartKeyStatement {
    /// Whether the parts of media sequence `sequence` are within the run.
    pub fn covers_sequence(&self, sequence: u64) -> bool {
        (self.first_sequence..=self.last_sequence).contains(&sequence)
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

impl Codec for PartKeyStatement {
    const WHAT: &'static str = "part-key delegation";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(PART_KEY_TAG);
        self.algorithm.write(out);
        self.key_id.write(out);
        put_name(out, self.stream.as_str());
        out.extend_from_slice(&self.session.0.to_be_bytes());
        put_name(out, self.rendition.as_str());
        out.extend_from_slice(&self.first_sequence.to_be_bytes());
        out.extend_from_slice(&self.last_sequence.to_be_bytes());
        self.delegated_algorithm.write(out);
        put_part(out, &self.delegated_key);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.tag(PART_KEY_TAG)?;
        let algorithm = r.read()?;
        let key_id = r.read()?;
        let stream = r.name("stream name", StreamName::new)?;
        let session = SessionId(r.u64("publish session")?);
        let rendition = r.name("rendition name", RenditionName::new)?;
        let first_sequence = r.u64("first sequence")?;
        let last_sequence = r.u64("last sequence")?;
        // A run that ends before it starts is refused as one of endless span.
        let span = last_sequence
            .checked_sub(first_sequence)
            .unwrap_or(u64::MAX);
        if span > MAX_PART_KEY_RUN {
            return Err(WireError::TooLarge {
                what: r.what(),
                field: "run of segments",
                len: span,
                max: usize::try_from(MAX_PART_KEY_RUN).unwrap_or(usize::MAX),
            });
        }
        Ok(PartKeyStatement {
            algorithm,
            key_id,
            stream,
            session,
            rendition,
            first_sequence,
            last_sequence,
            delegated_algorithm: r.read()?,
            delegated_key: r
                .part("delegated public key", MAX_DELEGATED_KEY_LEN)?
                .to_vec(),
        })
    }
}

impl Statement for PartKeyStatement {
    const ENVELOPE: &'static str = "signed part key";
    const FIELD: &'static str = "statement";
    const MAX_LEN: usize = MAX_PART_KEY_LEN;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PartKeyStatement {
        PartKeyStatement {
            algorithm: SignatureAlgorithm::MlDsa65,
            key_id: KeyId([7; 16]),
            stream: StreamName::new("cam1").expect("valid"),
            session: SessionId(42),
            rendition: RenditionName::new("360p").expect("valid"),
            first_sequence: 100,
            last_sequence: 104,
            delegated_algorithm: SignatureAlgorithm::Ed25519,
            delegated_key: vec![9; 32],
        }
    }

    /// The layout is a wire format that signatures depend on: pin it byte for byte.
    #[test]
    fn encoding_is_pinned() {
        let want: Vec<u8> = [
            &b"sealcast/v1/part-key\0"[..],
            &[1],                        // ML-DSA-65 signs it
            &[7; 16],                    // its key id
            &[4],                        // stream length
            b"cam1",                     // stream
            &[0, 0, 0, 0, 0, 0, 0, 42],  // session
            &[4],                        // rendition length
            b"360p",                     // rendition
            &[0, 0, 0, 0, 0, 0, 0, 100], // first sequence
            &[0, 0, 0, 0, 0, 0, 0, 104], // last sequence
            &[2],                        // Ed25519 delegated
            &[0, 0, 0, 32],              // key length
            &[9; 32],                    // key
        ]
        .concat();
        assert_eq!(sample().encode(), want);
        assert_eq!(PartKeyStatement::decode(&want), Ok(sample()));
        assert!(sample().encode().len() <= MAX_PART_KEY_LEN);
    }

    #[test]
    fn runs_end_after_they_start_and_stay_short() {
        for (first, last, ok) in [
            (5, 5, true),
            (5, 4, false),
            (0, MAX_PART_KEY_RUN, true),
            (0, MAX_PART_KEY_RUN + 1, false),
            (u64::MAX - 1, u64::MAX, true),
            (u64::MAX, 0, false),
        ] {
            let s = PartKeyStatement {
                first_sequence: first,
                last_sequence: last,
                ..sample()
            };
            let decoded = PartKeyStatement::decode(&s.encode());
            assert_eq!(decoded.is_ok(), ok, "{first}..={last}: {decoded:?}");
            if !ok {
                assert!(matches!(
                    decoded,
                    Err(DomainError::TooLarge {
                        field: "run of segments",
                        ..
                    })
                ));
            }
        }
        let s = sample();
        assert!(!s.covers_sequence(99));
        assert!(s.covers_sequence(100) && s.covers_sequence(104));
        assert!(!s.covers_sequence(105));
    }

    #[test]
    fn truncations_trailing_bytes_oversized_keys_and_foreign_tags_are_refused() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(PartKeyStatement::decode(&bytes[..n]).is_err(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            PartKeyStatement::decode(&longer),
            Err(DomainError::TrailingBytes { .. })
        ));
        let big = PartKeyStatement {
            delegated_key: vec![1; MAX_DELEGATED_KEY_LEN + 1],
            ..sample()
        };
        assert!(matches!(
            PartKeyStatement::decode(&big.encode()),
            Err(DomainError::TooLarge { .. })
        ));
        let largest = PartKeyStatement {
            stream: StreamName::new("s".repeat(64)).expect("valid"),
            rendition: RenditionName::new("r".repeat(64)).expect("valid"),
            delegated_key: vec![1; MAX_DELEGATED_KEY_LEN],
            ..sample()
        };
        assert_eq!(largest.encode().len(), MAX_PART_KEY_LEN);
        assert_eq!(PartKeyStatement::decode(&largest.encode()), Ok(largest));
        assert_eq!(
            PartKeyStatement::decode(br#"{"type":"synced"}"#),
            Err(DomainError::WrongTag {
                what: "part-key delegation"
            })
        );
    }

    #[test]
    fn envelopes_round_trip_under_their_cap() {
        let signed = SignedPartKey::new(sample().encode(), vec![3; 3309]);
        let bytes = signed.encode();
        assert!(bytes.len() <= MAX_SIGNED_PART_KEY_LEN);
        let back = SignedPartKey::decode(&bytes).expect("decodes");
        assert_eq!(back, signed);
        assert_eq!(back.statement(), Ok(sample()));
    }

    fn statement() -> impl Strategy<Value = PartKeyStatement> {
        (
            any::<[u8; 16]>(),
            "[a-z0-9][a-z0-9_-]{0,63}",
            any::<u64>(),
            "[a-z0-9][a-z0-9_-]{0,63}",
            any::<u64>(),
            0..=MAX_PART_KEY_RUN,
            proptest::collection::vec(any::<u8>(), 0..=64),
            any::<bool>(),
        )
            .prop_map(
                |(id, s, session, r, first, span, key, ml)| PartKeyStatement {
                    algorithm: if ml {
                        SignatureAlgorithm::MlDsa65
                    } else {
                        SignatureAlgorithm::Ed25519
                    },
                    key_id: KeyId(id),
                    stream: StreamName::new(s).expect("valid"),
                    session: SessionId(session),
                    rendition: RenditionName::new(r).expect("valid"),
                    first_sequence: first,
                    last_sequence: first.saturating_add(span),
                    delegated_algorithm: SignatureAlgorithm::Ed25519,
                    delegated_key: key,
                },
            )
    }

    proptest! {
        /// Every delegation round-trips, and any one-bit change to its bytes is refused or
        /// decodes to another delegation.
        #[test]
        fn delegations_round_trip_and_bind_every_byte(
            s in statement(),
            flip in any::<proptest::sample::Index>(),
        ) {
            let bytes = s.encode();
            prop_assert_eq!(PartKeyStatement::decode(&bytes), Ok(s.clone()));
            let mut changed = bytes.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            if let Ok(other) = PartKeyStatement::decode(&changed) {
                prop_assert_ne!(other, s);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(s) = PartKeyStatement::decode(&bytes) {
                prop_assert_eq!(s.encode(), bytes.clone());
            }
            if let Ok(e) = SignedPartKey::decode(&bytes) {
                prop_assert_eq!(e.encode(), bytes);
            }
        }
    }
}
