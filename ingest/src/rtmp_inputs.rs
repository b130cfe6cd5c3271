//! FLV tag bodies (from RTMP messages or an FLV file) turned into pipeline input.

use bytes::Bytes;

use crate::container::flv::{self, AudioTag, VideoTag};
use crate::error::IngestError;
use crate::pipeline::{AudioCodec, MediaInput, VideoCodec};

pub(crate) fn video(data: &Bytes, timestamp_ms: i64) -> Result<Option<MediaInput>, IngestError> {
    Ok(match flv::parse_video_tag(data)? {
        VideoTag::AvcSequenceHeader(record) => Some(MediaInput::VideoConfig {
            codec: VideoCodec::H264,
            config: record,
        }),
        VideoTag::AvcNalus {
            keyframe,
            composition_time_ms,
            data,
        } => Some(MediaInput::Video {
            dts_ms: timestamp_ms,
            cts_ms: composition_time_ms,
            keyframe,
            data,
        }),
        VideoTag::AvcEndOfSequence | VideoTag::Info => None,
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
        AudioTag::AacSequenceHeader(asc) => Some(MediaInput::AudioConfig {
            codec: AudioCodec::Aac,
            config: asc,
        }),
        AudioTag::AacRaw(raw) => Some(MediaInput::Audio {
            codec: AudioCodec::Aac,
            pts_ms: timestamp_ms,
            data: raw,
        }),
        // MP3 (and its 8 kHz variant) is re-encoded to AAC by the pipeline.
        AudioTag::Other {
            sound_format: 2 | 14,
            data,
            ..
        } => Some(MediaInput::Audio {
            codec: AudioCodec::Mp3,
            pts_ms: timestamp_ms,
            data,
        }),
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
