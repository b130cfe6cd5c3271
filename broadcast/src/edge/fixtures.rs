//! What the tests of the edge's state machines share: genuine parts with their claims and
//! verified statements, on two lanes of one stream, and real SHA-256 digests (the gates
//! compare digests only, but a stand-in would be one more thing to trust).

use std::time::Duration;

use bytes::Bytes;
use domain::segment::PartMeta;
use domain::wire::{KeyId, PartStatement, SignatureAlgorithm};
use domain::{RenditionName, SessionId, StreamName};
use sha2::{Digest, Sha256};

use super::candidates::{Claim, Signed};

/// SHA-256, as the push endpoint computes it.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The rendition of lane 0 (`720p`) or 1 (`360p`) of stream `s`.
pub(crate) fn rendition(lane: u8) -> RenditionName {
    RenditionName::new(["720p", "360p"][usize::from(lane)]).expect("valid")
}

/// The genuine claim of part (sequence, index) on `lane`.
pub(crate) fn part_claim(lane: u8, sequence: u64, index: u32) -> PartMeta {
    PartMeta {
        stream: StreamName::new("s").expect("valid"),
        rendition: rendition(lane),
        session: SessionId(1),
        sequence,
        index,
        discontinuity_sequence: 0,
        independent: index == 0,
        duration: Duration::from_millis(333),
        program_date_time_ms: 1_800_000_000_000,
    }
}

/// The genuine bytes of a part: 40 to 59 bytes that differ per lane and key.
pub(crate) fn part_bytes(lane: u8, sequence: u64, index: u32) -> Bytes {
    let len = 40 + (sequence as usize * 7 + index as usize * 3 + usize::from(lane)) % 20;
    let byte = (sequence as u8) ^ (index as u8).wrapping_mul(7) ^ (lane << 4);
    Bytes::from(vec![byte; len])
}

/// The verified statement of the genuine part, in its envelope.
pub(crate) fn signed_part(lane: u8, sequence: u64, index: u32) -> Signed<PartStatement> {
    let bytes = part_bytes(lane, sequence, index);
    let statement = part_claim(lane, sequence, index).describe(
        SignatureAlgorithm::Ed25519,
        KeyId([1; 16]),
        bytes.len() as u64,
        sha256(&bytes),
    );
    signed(statement, PartStatement::encode)
}

/// `statement` in an envelope of its own bytes (no signature: the gates only hand the
/// envelope on, the caller verified it).
pub(crate) fn signed<S>(statement: S, encode: impl Fn(&S) -> Vec<u8>) -> Signed<S> {
    Signed {
        envelope: Bytes::from(encode(&statement)),
        statement,
    }
}
