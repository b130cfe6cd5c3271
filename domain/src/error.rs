//! The one error type of the domain crate.

/// Why a domain value could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A name (stream, rendition, node) was empty, too long or had characters that are not
    /// safe in a URL path or an MQTT topic.
    #[error("invalid {kind}: {reason}")]
    InvalidName {
        /// Which kind of name.
        kind: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
    /// Bytes that do not open with a segment's or a part's domain tag: not a segment or
    /// part statement at all, or one of another format version.
    #[error("not a sealcast/v1 segment or part statement (wrong domain tag)")]
    WrongMediaTag,
    /// Bytes that do not open with the control-event domain tag.
    #[error("not a sealcast/v1 control-event statement (wrong domain tag)")]
    WrongEventTag,
    /// Bytes that do not open with the presence domain tag.
    #[error("not a sealcast/v1 presence statement (wrong domain tag)")]
    WrongPresenceTag,
    /// Bytes that do not open with the domain tag of what they were decoded as (the
    /// statements above have errors of their own).
    #[error("not a sealcast/v1 {what} (wrong domain tag)")]
    WrongTag {
        /// What was expected.
        what: &'static str,
    },
    /// A format version that this build does not read.
    #[error("{what}: unsupported version {version}")]
    UnsupportedVersion {
        /// What was being decoded.
        what: &'static str,
        /// The version on the wire.
        version: u8,
    },
    /// A signature-algorithm code that this build does not know.
    #[error("unknown signature algorithm code {code}")]
    UnknownSignatureAlgorithm {
        /// The code as it was on the wire.
        code: u8,
    },
    /// A key id that is not 32 lowercase hex digits (the one spelling used in topics, so
    /// that every key has exactly one revocation topic).
    #[error("invalid key id: use 32 lowercase hex digits")]
    InvalidKeyId,
    /// A session (recording) id that is not 16 lowercase hex digits, the one spelling
    /// `SessionId` displays as (so every recording has exactly one URL and one directory).
    #[error("invalid session id: use 16 lowercase hex digits")]
    InvalidSessionId,
    /// Encoded bytes that end inside a field.
    #[error("truncated {what}: it ends inside the {field}")]
    Truncated {
        /// What was being decoded (`segment statement`, `signed statement`).
        what: &'static str,
        /// The field that is incomplete.
        field: &'static str,
    },
    /// Bytes left over after a complete encoded value. Refused so that every value has
    /// exactly one encoding.
    #[error("{count} trailing bytes after the {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A one-byte flag that is neither 0 nor 1. Refused so that every value has exactly
    /// one encoding.
    #[error("{what}: the {field} flag is neither 0 nor 1")]
    InvalidFlag {
        /// What was being decoded.
        what: &'static str,
        /// The flag.
        field: &'static str,
    },
    /// An init segment that is empty or larger than the cap.
    #[error("invalid init segment: {reason}")]
    InvalidInitSegment {
        /// What is allowed.
        reason: &'static str,
    },
    /// ISO BMFF bytes that are not what C2PA signing or checking needs.
    #[error("invalid BMFF for C2PA: {reason}")]
    InvalidBmff {
        /// What was wrong.
        reason: &'static str,
    },
    /// CBOR a C2PA validator read that is not what it accepts.
    #[error("invalid CBOR: {reason}")]
    InvalidCbor {
        /// What was wrong.
        reason: &'static str,
    },
    /// A length prefix over the cap for its part; refused before anything is copied.
    #[error("{what}: the {field} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The part that is too large.
        field: &'static str,
        /// The length the prefix announced.
        len: u64,
        /// The cap for that part.
        max: usize,
    },
    /// A JSON payload (presence, control event) that is not what it should be.
    #[error("invalid {what}: {reason}")]
    InvalidJson {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An MQTT broker address that is not `mqtt://[user[:password]@]host[:port]`.
    #[error("invalid broker address: {reason}")]
    InvalidBrokerAddress {
        /// What was wrong.
        reason: &'static str,
    },
    /// A codecs list that is not RFC 6381 codec ids.
    #[error("invalid codecs: {reason}")]
    InvalidCodecs {
        /// What is allowed.
        reason: &'static str,
    },
    /// A rendition description a playlist could not honestly carry.
    #[error("invalid rendition: {reason}")]
    InvalidRendition {
        /// What is allowed.
        reason: &'static str,
    },
    /// A push token that is too short or not printable ASCII.
    #[error("invalid push token: use at least 16 printable ASCII characters, no spaces")]
    InvalidPushToken,
    /// A ladder configuration that cannot be encoded.
    #[error("invalid ladder: {0}")]
    InvalidLadder(String),
    /// A playlist request's query that HLS does not allow (`_HLS_msn`, `_HLS_part`,
    /// `_HLS_skip`).
    #[error("invalid playlist query: {reason}")]
    InvalidQuery {
        /// What was wrong.
        reason: &'static str,
    },
    /// A playlist (`hls::read_media`, `hls::read_master`) over a cap, or with a tag that
    /// breaks the grammar.
    #[error("invalid playlist (line {line}): {reason}")]
    InvalidPlaylist {
        /// The line refused, from 1 (0: the whole text).
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A segment or part that does not come after what a live window already holds.
    #[error("out of order: {what}")]
    OutOfOrder {
        /// What came out of order.
        what: &'static str,
    },
}

/// Decodes a JSON control message of at most `max` bytes, naming it `what` in the error:
/// the size check comes first, so an oversized payload is never parsed.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<T, DomainError> {
    if bytes.len() > max {
        return Err(DomainError::TooLarge {
            what,
            field: "payload",
            len: bytes.len() as u64,
            max,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| DomainError::InvalidJson {
        what,
        reason: e.to_string(),
    })
}
