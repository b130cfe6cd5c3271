//! The one error type of the ingest crate.

use container::ContainerError;
use intake::IntakeError;

/// What can go wrong while ingesting a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// FFmpeg refused an operation; `context` says which.
    #[error("{context}: {source}")]
    Ffmpeg {
        /// What was being done.
        context: &'static str,
        /// FFmpeg's error, boxed so that no FFmpeg type leaves `pipeline::transcode`.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This FFmpeg build lacks a codec we need.
    #[error("FFmpeg has no {0}")]
    MissingCodec(&'static str),
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
    /// Video arrived before the decoder configuration, or the stream has no video.
    #[error("the stream has no video decoder configuration (sequence header) before its video")]
    MissingVideoConfig,
    /// The publisher sent no keyframe for too long: a segment cannot be cut, and the open
    /// one would grow without bound.
    #[error("no keyframe for {seconds} s ({bytes} bytes of video): send a keyframe at least every few seconds (OBS: keyframe interval 2 s)")]
    NoKeyframe {
        /// Media time since the last segment boundary.
        seconds: i64,
        /// Source video bytes since then.
        bytes: usize,
    },
    /// The RTMP session failed.
    #[error("RTMP: {0}")]
    Rtmp(String),
    /// An SRT session failed (the caller went silent, sent no readable MPEG-TS).
    #[error("SRT: {0}")]
    Srt(String),
    /// Reading or writing a file or socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The catalog could not be asked.
    #[error("catalog: {0}")]
    Catalog(#[source] crate::authority::AuthorityError),
    /// A pipeline thread stopped unexpectedly.
    #[error("pipeline stopped: {0}")]
    PipelineStopped(&'static str),
    /// A distribution setting is out of range (the operator's to fix; retrying is useless).
    #[error("invalid distribution setting: {0}")]
    InvalidDistributeConfig(&'static str),
    /// The ingest certificate to announce cannot be decoded.
    #[error("the ingest certificate is unreadable: {0}")]
    Certificate(#[source] certs::CertsError),
    /// The ingest certificate does not vouch for this node's signing key: every edge would
    /// refuse every segment, so distribution does not start.
    #[error("the ingest certificate does not fit: {0}")]
    CertificateMismatch(&'static str),
    /// The HTTP client for pushes could not be built (no usable TLS or DNS backend).
    #[error("building the push HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The configuration file does not parse or holds a value out of range.
    #[error("configuration: {0}")]
    Config(String),
    /// The MQTT connection task stopped while distribution still needed it.
    #[error("the MQTT connection stopped unexpectedly")]
    MqttStopped,
}

/// The intake's errors keep their name and message here (a tag of an unsupported codec is
/// told apart from a malformed one by the RTMP policy).
impl From<IntakeError> for IngestError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Container(e) => IngestError::Container(e),
            IntakeError::UnsupportedCodec { kind, codec } => {
                IngestError::UnsupportedCodec { kind, codec }
            }
            IntakeError::Config(message) => IngestError::Config(message),
        }
    }
}
