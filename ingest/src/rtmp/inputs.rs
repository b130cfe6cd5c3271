//! FLV tag bodies (from RTMP messages, legacy or Enhanced RTMP, or an FLV file) turned
//! into pipeline input.

use bytes::Bytes;
use container::flv::{self, AudioFourCc, AudioTag, VideoFourCc, VideoTag};

use crate::error::IngestError;
use crate::pipeline::{AudioCodec, MediaInput, VideoCodec};

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

pub(crate) fn video(data: &Bytes, timestamp_ms: i64) -> Result<Option<MediaInput>, IngestError> {
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
            return Err(IngestError::UnsupportedCodec {
                kind: "video",
                codec,
            })
        }
    })
}

pub(crate) fn audio(data: &Bytes, timestamp_ms: i64) -> Result<Option<MediaInput>, IngestError> {
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
            return Err(IngestError::UnsupportedCodec {
                kind: "audio",
                codec: format!("FLV sound format {sound_format}"),
            })
        }
        AudioTag::Unsupported { codec } => {
            return Err(IngestError::UnsupportedCodec {
                kind: "audio",
                codec,
            })
        }
    })
}
