//! The statement an ingest signs around each control event (session start and end,
//! rendition info, "window sent"), the body of `POST /internal/v1/events`.

use super::codec::{put_part, Codec, Reader, WireError};
use super::envelope::{Signed, Statement, MAX_SIGNATURE_LEN};
use super::key::{KeyId, SignatureAlgorithm};
use crate::DomainError;

/// Domain-separation tag of a control-event statement ([`EventStatement`]).
pub const EVENT_TAG: &[u8] = b"sealcast/v1/control-event\0";
/// Largest event body (JSON of a control event) a statement may carry.
pub const MAX_EVENT_LEN: usize = 48 * 1024;
/// Largest encoded [`SignedEvent`]: a statement at its caps and the largest signature.
pub const MAX_SIGNED_EVENT_LEN: usize =
    8 + EVENT_TAG.len() + 1 + 16 + 8 + 4 + MAX_EVENT_LEN + MAX_SIGNATURE_LEN;

/// The body of `POST /internal/v1/events`: an [`EventStatement`] and the ingest's signature.
pub type SignedEvent = Signed<EventStatement>;

/// What an ingest says in a control event, as it signs it: the domain tag [`EVENT_TAG`],
/// algorithm, key id, when the ingest signed it (unix milliseconds, so an edge can refuse
/// an old statement replayed), and the event itself as opaque bytes (JSON of
/// `domain::push_protocol::ControlEvent`, decoded only after the signature verified),
/// u32-length-prefixed. Strict like [`super::SegmentStatement`]: one encoding per statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStatement {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key.
    pub key_id: KeyId,
    /// When the ingest signed it, unix milliseconds.
    pub issued_at_ms: u64,
    /// The event's bytes, at most [`MAX_EVENT_LEN`].
    pub body: Vec<u8>,
}

impl EventStatement {
    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        <Self as Statement>::decode(bytes)
    }
}

impl Codec for EventStatement {
    const WHAT: &'static str = "control-event statement";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(EVENT_TAG);
        self.algorithm.write(out);
        self.key_id.write(out);
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        put_part(out, &self.body);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.tag(EVENT_TAG)?;
        Ok(EventStatement {
            algorithm: r.read()?,
            key_id: r.read()?,
            issued_at_ms: r.u64("issue time")?,
            body: r.part("event", MAX_EVENT_LEN)?.to_vec(),
        })
    }
}

impl Statement for EventStatement {
    const WRONG_TAG: DomainError = DomainError::WrongEventTag;
    const ENVELOPE: &'static str = "signed control event";
    const FIELD: &'static str = "statement";
    // The envelope's two length prefixes counted in as well: the cap it always had.
    const MAX_LEN: usize = MAX_SIGNED_EVENT_LEN - MAX_SIGNATURE_LEN;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::segment::tests::sample;
    use crate::wire::SegmentStatement;

    #[test]
    fn statements_round_trip_and_decode_strictly() {
        let statement = EventStatement {
            algorithm: SignatureAlgorithm::MlDsa65,
            key_id: KeyId([7; 16]),
            issued_at_ms: 1_800_000_000_123,
            body: br#"{"type":"synced","ingest":"ingest1"}"#.to_vec(),
        };
        let bytes = statement.encode();
        assert_eq!(EventStatement::decode(&bytes), Ok(statement.clone()));
        // Every truncation and any trailing byte is an error.
        for n in 0..bytes.len() {
            assert!(EventStatement::decode(&bytes[..n]).is_err(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(EventStatement::decode(&longer).is_err());
        // A segment statement is never read as a statement, nor the other way round.
        assert_eq!(
            EventStatement::decode(&sample().encode()),
            Err(DomainError::WrongEventTag)
        );
        assert!(SegmentStatement::decode(&bytes).is_err());
        // Over the body cap: refused before copying.
        let big = EventStatement {
            body: vec![b' '; MAX_EVENT_LEN + 1],
            ..statement.clone()
        };
        assert!(matches!(
            EventStatement::decode(&big.encode()),
            Err(DomainError::TooLarge { .. })
        ));
        let signed = SignedEvent::new(bytes, vec![1; 64]);
        let decoded = SignedEvent::decode(&signed.encode()).expect("decodes");
        assert_eq!(decoded.statement(), Ok(statement));
        assert!(signed.encode().len() <= MAX_SIGNED_EVENT_LEN);
    }

    /// The layout is a wire format that signatures depend on: pin it byte for byte, and
    /// the envelope's caps with it.
    #[test]
    fn encoding_is_pinned() {
        let statement = EventStatement {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: KeyId([7; 16]),
            issued_at_ms: 1_800_000_000_123,
            body: b"{}".to_vec(),
        };
        let want: Vec<u8> = [
            &b"sealcast/v1/control-event\0"[..],
            &[2],                                        // Ed25519
            &[7; 16],                                    // key id
            &[0, 0, 0x01, 0xa3, 0x18, 0x5c, 0x50, 0x7b], // 1 800 000 000 123 ms
            &[0, 0, 0, 2],                               // body length
            b"{}",                                       // body
        ]
        .concat();
        assert_eq!(statement.encode(), want);
        let signed = SignedEvent::sign(&statement, |_| b"sig".to_vec());
        assert_eq!(
            signed.encode(),
            [&[0, 0, 0, 57][..], &want, &[0, 0, 0, 3], b"sig"].concat()
        );
        assert_eq!(MAX_SIGNED_EVENT_LEN, 57_407);
        assert_eq!(
            SignedEvent::decode(&(MAX_SIGNED_EVENT_LEN as u32 - 8191).to_be_bytes()),
            Err(DomainError::TooLarge {
                what: "signed control event",
                field: "statement",
                len: 49_216,
                max: 49_215
            })
        );
    }
}
