//! The statement a broadcast node signs about itself on its presence topic. The presence's
//! JSON rides inside as opaque bytes: `crate::presence` reads it, and depends on this
//! module, not the other way round.

use super::codec::{put_name, put_part, Codec, Reader, WireError};
use super::envelope::{Signed, Statement, MAX_SIGNATURE_LEN};
use super::key::{KeyId, SignatureAlgorithm};
use crate::{DomainError, NodeId};

/// Domain-separation tag of a broadcast node's presence statement ([`PresenceStatement`]).
pub const PRESENCE_TAG: &[u8] = b"sealcast/v1/presence\0";
/// Largest presence JSON a statement may carry: the cap of a plain presence as well
/// (`crate::presence::MAX_PRESENCE_LEN` is this).
pub const MAX_PRESENCE_JSON_LEN: usize = 4096;
/// Largest certificate a presence statement may carry (an ML-DSA-65 edge certificate is
/// under 5.4 KB).
pub const MAX_PRESENCE_CERTIFICATE_LEN: usize = 8 * 1024;
/// Largest encoded [`SignedPresence`].
pub const MAX_SIGNED_PRESENCE_LEN: usize = 8
    + PRESENCE_TAG.len()
    + 1
    + 16
    + 65
    + 8
    + 8
    + MAX_PRESENCE_JSON_LEN
    + MAX_PRESENCE_CERTIFICATE_LEN
    + MAX_SIGNATURE_LEN;

/// A broadcast node's presence payload: a [`PresenceStatement`] and the node's signature
/// with its edge key.
pub type SignedPresence = Signed<PresenceStatement>;

/// What a broadcast node says about itself, as it signs it: the domain tag
/// [`PRESENCE_TAG`], algorithm, key id, the node (which must be the node of the presence
/// topic it arrives on), when it was signed (unix milliseconds), the presence JSON
/// ([`crate::presence::Presence`]) and the root-signed certificate of the signing key, the
/// last two u32-length-prefixed. Strict like [`super::SegmentStatement`]: one encoding per
/// statement. Nothing here checks a signature: `certs::signing::PresenceVerifier` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceStatement {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key.
    pub key_id: KeyId,
    /// The node the presence is about.
    pub node: NodeId,
    /// When the node signed it, unix milliseconds.
    pub issued_at_ms: u64,
    /// The presence's JSON, at most [`MAX_PRESENCE_JSON_LEN`] bytes.
    pub presence: Vec<u8>,
    /// The signing key's certificate, at most [`MAX_PRESENCE_CERTIFICATE_LEN`] bytes.
    pub certificate: Vec<u8>,
}

impl PresenceStatement {
    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        <Self as Statement>::decode(bytes)
    }
}

impl Codec for PresenceStatement {
    const WHAT: &'static str = "presence statement";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(PRESENCE_TAG);
        self.algorithm.write(out);
        self.key_id.write(out);
        put_name(out, self.node.as_str());
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        put_part(out, &self.presence);
        put_part(out, &self.certificate);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.tag(PRESENCE_TAG)?;
        Ok(PresenceStatement {
            algorithm: r.read()?,
            key_id: r.read()?,
            node: r.name("node", NodeId::new)?,
            issued_at_ms: r.u64("issue time")?,
            presence: r.part("presence", MAX_PRESENCE_JSON_LEN)?.to_vec(),
            certificate: r
                .part("certificate", MAX_PRESENCE_CERTIFICATE_LEN)?
                .to_vec(),
        })
    }
}

impl Statement for PresenceStatement {
    const WRONG_TAG: DomainError = DomainError::WrongPresenceTag;
    const ENVELOPE: &'static str = "signed presence";
    const FIELD: &'static str = "statement";
    // The largest statement exactly: the envelope without its prefixes and signature.
    const MAX_LEN: usize = MAX_SIGNED_PRESENCE_LEN - MAX_SIGNATURE_LEN - 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> PresenceStatement {
        PresenceStatement {
            algorithm: SignatureAlgorithm::MlDsa65,
            key_id: KeyId([7; 16]),
            node: NodeId::new("broadcast1").expect("valid"),
            issued_at_ms: 1_800_000_000_123,
            presence: br#"{"role":"broadcast","state":"ready"}"#.to_vec(),
            certificate: b"cert".to_vec(),
        }
    }

    /// The layout is a wire format that signatures depend on: pin it byte for byte.
    #[test]
    fn encoding_is_pinned() {
        let s = statement();
        let want: Vec<u8> = [
            &b"sealcast/v1/presence\0"[..],
            &[1],                                        // ML-DSA-65
            &[7; 16],                                    // key id
            &[10],                                       // node length
            b"broadcast1",                               // node
            &[0, 0, 0x01, 0xa3, 0x18, 0x5c, 0x50, 0x7b], // 1 800 000 000 123 ms
            &[0, 0, 0, 36],                              // presence length
            br#"{"role":"broadcast","state":"ready"}"#,  // presence
            &[0, 0, 0, 4],                               // certificate length
            b"cert",                                     // certificate
        ]
        .concat();
        assert_eq!(s.encode(), want);
        assert_eq!(PresenceStatement::decode(&want), Ok(s.clone()));
        let signed = SignedPresence::sign(&s, |_| vec![9; 2]);
        let bytes = signed.encode();
        assert_eq!(
            bytes,
            [
                &(want.len() as u32).to_be_bytes()[..],
                &want,
                &[0, 0, 0, 2, 9, 9]
            ]
            .concat()
        );
        assert_eq!(SignedPresence::decode(&bytes), Ok(signed.clone()));
        assert_eq!(signed.statement(), Ok(s));
    }

    #[test]
    fn decoding_is_strict_and_bounded() {
        let bytes = statement().encode();
        for n in 0..bytes.len() {
            assert!(PresenceStatement::decode(&bytes[..n]).is_err(), "{n}");
        }
        assert_eq!(
            PresenceStatement::decode(&[&bytes[..], &[0]].concat()),
            Err(DomainError::TrailingBytes {
                what: "presence statement",
                count: 1
            })
        );
        assert_eq!(
            PresenceStatement::decode(b"{\"role\":\"broadcast\"}"),
            Err(DomainError::WrongPresenceTag)
        );
        let big = PresenceStatement {
            certificate: vec![0; MAX_PRESENCE_CERTIFICATE_LEN + 1],
            ..statement()
        };
        assert!(matches!(
            PresenceStatement::decode(&big.encode()),
            Err(DomainError::TooLarge {
                field: "certificate",
                ..
            })
        ));
        // The largest statement fits its envelope exactly; one byte more does not.
        let largest = PresenceStatement {
            node: NodeId::new("n".repeat(64)).expect("valid"),
            presence: vec![b' '; MAX_PRESENCE_JSON_LEN],
            certificate: vec![0; MAX_PRESENCE_CERTIFICATE_LEN],
            ..statement()
        };
        let signed = SignedPresence::new(largest.encode(), vec![0; MAX_SIGNATURE_LEN]);
        assert_eq!(signed.encode().len(), MAX_SIGNED_PRESENCE_LEN);
        assert_eq!(SignedPresence::decode(&signed.encode()), Ok(signed.clone()));
        let over = SignedPresence::new([&largest.encode()[..], &[0]].concat(), vec![]);
        assert!(matches!(
            SignedPresence::decode(&over.encode()),
            Err(DomainError::TooLarge {
                what: "signed presence",
                field: "statement",
                ..
            })
        ));
    }
}
