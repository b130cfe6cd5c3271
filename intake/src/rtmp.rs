//! RTMP's protocol level: FLV tag bodies (from RTMP messages, legacy or Enhanced RTMP, or
//! an FLV file) turned into pipeline input, sans-IO; the server that reads them off the
//! connection is `ingest::rtmp`.

use bytes::Bytes;
use container::flv::{self, AudioFourCc, AudioTag, VideoFourCc, VideoTag};

use crate::media::{AudioCodec, MediaInput, VideoCodec};
use crate::IntakeError;

/// RTMP connections open at once, by default (`[ingest] max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The pipeline's name for a video FourCC.
fn video_codec(codec: VideoFourCc) -> VideoCodec {
    match codec {
        VideoFourCc::Avc => VideoCodec::H264,
        VideoFourCc::Hevc => VideoCodec::Hevc,
        VideoFourCc::Av1 => VideoCodec::Av1,
        VideoFourCc::Vp9 => VideoCodec::Vp9,
    }
}

/// The pipeline's name for an audio FourCC.
fn audio_codec(codec: AudioFourCc) -> AudioCodec {
    match codec {
        AudioFourCc::Aac => AudioCodec::Aac,
        AudioFourCc::Opus => AudioCodec::Opus,
        AudioFourCc::Ac3 => AudioCodec::Ac3,
        AudioFourCc::Eac3 => AudioCodec::Eac3,
        AudioFourCc::Mp3 => AudioCodec::Mp3,
    }
}

/// A video tag's body at `timestamp_ms`: a configuration, a frame, or nothing for the
/// pipeline (an end of sequence, an info frame); an error for a malformed tag or a codec
/// we do not take ([`IntakeError::UnsupportedCodec`]).
pub fn video(data: &Bytes, timestamp_ms: i64) -> Result<Option<MediaInput>, IntakeError> {
    Ok(match flv::parse_video_tag(data)? {
        VideoTag::SequenceStart { codec, config } => Some(MediaInput::VideoConfig {
            codec: video_codec(codec),
            config,
        }),
        VideoTag::CodedFrames {
            codec: _,
            keyframe,
            composition_time_ms,
            data,
        } => Some(MediaInput::Video {
            dts_ms: timestamp_ms,
            cts_ms: composition_time_ms,
            keyframe,
            data,
        }),
        VideoTag::SequenceEnd | VideoTag::Info => None,
        VideoTag::Unsupported { codec } => {
            return Err(IntakeError::UnsupportedCodec {
                kind: "video",
                codec,
            })
        }
    })
}

/// An audio tag's body at `timestamp_ms`, as [`video`] takes a video tag's.
pub fn audio(data: &Bytes, timestamp_ms: i64) -> Result<Option<MediaInput>, IntakeError> {
    Ok(match flv::parse_audio_tag(data)? {
        AudioTag::SequenceStart { codec, config } => Some(MediaInput::AudioConfig {
            codec: audio_codec(codec),
            config,
        }),
        AudioTag::CodedFrames { codec, data } => Some(MediaInput::Audio {
            codec: audio_codec(codec),
            pts_ms: timestamp_ms,
            data,
        }),
        AudioTag::Info => None,
        AudioTag::Other { sound_format, .. } => {
            return Err(IntakeError::UnsupportedCodec {
                kind: "audio",
                codec: format!("FLV sound format {sound_format}"),
            })
        }
        AudioTag::Unsupported { codec } => {
            return Err(IntakeError::UnsupportedCodec {
                kind: "audio",
                codec,
            })
        }
    })
}
