//! The one error type of the intake crate. `ingest` turns each into the `IngestError`
//! of the same name and message.

use container::ContainerError;

/// What a publisher's media or the configuration file may hold that cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The publisher sent bytes we cannot parse.
    #[error("malformed media from the publisher: {0}")]
    Container(#[from] ContainerError),
    /// The publisher sent a codec we do not take.
    #[error("unsupported {kind} codec {codec}: publish H.264, HEVC, AV1 or VP9 video (and AAC, Opus, AC-3, E-AC-3 or MP3 audio)")]
    UnsupportedCodec {
        /// `video` or `audio`.
        kind: &'static str,
        /// The codec as the publisher named it.
        codec: String,
    },
    /// The configuration file does not parse or holds a value out of range.
    #[error("configuration: {0}")]
    Config(String),
}
