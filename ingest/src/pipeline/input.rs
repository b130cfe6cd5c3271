//! What a pipeline takes in: media already split out of its container, in the crate's own
//! terms (no FFmpeg type, no FLV tag).
//!
//! The codec travels with the media, named by [`VideoCodec`] and [`AudioCodec`], rather than
//! being implied by the variant: today the publisher's H.264 is cut for the `src` rung and
//! decoded for the others, AAC is framed for every rung and MP3 is re-encoded to AAC; a
//! codec another ingest protocol brings (issue 32: HEVC, AV1 or VP9 from Enhanced RTMP, SRT
//! or WHIP, Opus audio) becomes a variant here and an arm in `transcode` and the
//! coordinator, while the threads, the segmenter and the muxers keep their shape.

use bytes::Bytes;

/// A video codec a publisher may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 / AVC: configured by an AVCDecoderConfigurationRecord, access units AVCC framed
    /// (length-prefixed NAL units).
    H264,
}

/// An audio codec a publisher may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// AAC: configured by an AudioSpecificConfig, frames raw (no ADTS header). Carried to
    /// every rung as it is.
    Aac,
    /// MP3 (MPEG-1/2 Layer III), the FLV default of many encoders: each frame describes
    /// itself, so no configuration comes first. Re-encoded to AAC.
    Mp3,
}

/// Media handed to a pipeline, already split out of its container (FLV tags, from an
/// RTMP connection or a file).
#[derive(Debug, Clone)]
pub enum MediaInput {
    /// The decoder configuration of the video that follows (H.264: an
    /// AVCDecoderConfigurationRecord).
    VideoConfig {
        /// The codec of the video that follows.
        codec: VideoCodec,
        /// The configuration, in that codec's own form.
        config: Bytes,
    },
    /// One video access unit, in the codec and framing of the last [`MediaInput::VideoConfig`].
    Video {
        /// Decode time (ms).
        dts_ms: i64,
        /// Composition offset (ms): pts = dts + cts.
        cts_ms: i32,
        /// Marked as a keyframe by the publisher.
        keyframe: bool,
        /// The access unit (H.264: length-prefixed NAL units).
        data: Bytes,
    },
    /// The decoder configuration of the audio that follows (AAC: an AudioSpecificConfig).
    AudioConfig {
        /// The codec of the audio that follows.
        codec: AudioCodec,
        /// The configuration, in that codec's own form.
        config: Bytes,
    },
    /// One audio frame.
    Audio {
        /// Its codec: AAC is carried as it is, anything else is re-encoded to AAC.
        codec: AudioCodec,
        /// Presentation time (ms).
        pts_ms: i64,
        /// The frame (AAC: raw, without ADTS header).
        data: Bytes,
    },
    /// The publisher's declared frame rate (onMetaData), a hint for rate control.
    FrameRate(f64),
}
