//! The one error type of the domain crate.

/// Why a domain value could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (stream, rendition, node) was empty, too long or had characters that are not
    /// safe in a URL path or an MQTT topic.
    #[error("invalid {kind}: {reason}")]
    InvalidName {
        /// Which kind of name.
        kind: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
    /// Bytes that are not a valid segment manifest or envelope; says what is wrong.
    #[error("invalid segment manifest: {0}")]
    Manifest(&'static str),
    /// A ladder configuration that cannot be encoded.
    #[error("invalid ladder: {0}")]
    InvalidLadder(String),
}
