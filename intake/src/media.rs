//! What an ingest pipeline takes in: media already split out of its container, in the
//! ingest's own terms (no FFmpeg type, no FLV tag, no MPEG-TS packet). Every ingest
//! protocol feeds a pipeline through [`MediaInput`] alone, each through its adapter: RTMP
//! ([`crate::rtmp`], FLV tag bodies), SRT ([`crate::srt`], MPEG-TS) and WHIP
//! ([`crate::webrtc::media`], RTP depacketised by str0m in `ingest::webrtc`).
//!
//! The codec travels with the media, named by [`VideoCodec`] and [`AudioCodec`]. A
//! [`MediaInput::VideoConfig`] comes before the first frame of its codec and again when
//! the configuration changes; an [`MediaInput::AudioConfig`] before AAC frames (others
//! need none, but may have one). How each codec travels:
//!
//! | codec | configuration (`config`) | each frame (`data`) |
//! |---|---|---|
//! | [`VideoCodec::H264`] | AVCDecoderConfigurationRecord (`AvcConfig::record` builds one from SPS/PPS) | length-prefixed NAL units, the record's length size; IDR = `keyframe` |
//! | [`VideoCodec::Hevc`] | HEVCDecoderConfigurationRecord (`HevcConfig::record`) | length-prefixed NAL units; IRAP = `keyframe` |
//! | [`VideoCodec::Av1`] | AV1CodecConfigurationRecord | one temporal unit of low-overhead OBUs; key frame = `keyframe` |
//! | [`VideoCodec::Vp9`] | VPCodecConfigurationRecord | one frame or superframe; key frame = `keyframe` |
//! | [`AudioCodec::Aac`] | AudioSpecificConfig | one raw frame (no ADTS header) |
//! | [`AudioCodec::Opus`] | Opus ID header or nothing | one Opus packet |
//! | [`AudioCodec::Mp3`], [`AudioCodec::Ac3`], [`AudioCodec::Eac3`] | nothing | one or more frames |
//!
//! Timestamps are milliseconds on the publisher's clock (any origin, increasing). The
//! `src` rung passes H.264, HEVC, AV1 and VP9 through (CMAF; MPEG-TS takes H.264 and HEVC
//! only and encodes the others); every other rung is H.264. Audio that is not AAC is
//! re-encoded to AAC-LC 48 kHz stereo for every rung, on the pipeline's thread.

use bytes::Bytes;

/// A video codec a publisher may send. Not `#[non_exhaustive]`: `ingest` matches it
/// exhaustively, so a new codec stops the build at each place that must learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC: configured by an AVCDecoderConfigurationRecord, access units AVCC framed
    /// (length-prefixed NAL units).
    H264,
    /// HEVC / H.265: configured by an HEVCDecoderConfigurationRecord, access units
    /// length-prefixed NAL units.
    Hevc,
    /// AV1: configured by an AV1CodecConfigurationRecord, access units OBUs.
    Av1,
    /// VP9: configured by a VPCodecConfigurationRecord, access units frames.
    Vp9,
}

/// An audio codec a publisher may send (not `#[non_exhaustive]`, as [`VideoCodec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC: configured by an AudioSpecificConfig, frames raw (no ADTS header). Carried to
    /// every rung as it is.
    Aac,
    /// MP3 (MPEG-1/2 Layer III), the FLV default of many encoders: each frame describes
    /// itself, so no configuration comes first. Re-encoded to AAC.
    Mp3,
    /// Opus (E-RTMP `Opus`, SRT, WHIP). Re-encoded to AAC.
    Opus,
    /// AC-3 (E-RTMP `ac-3`, SRT). Re-encoded to AAC.
    Ac3,
    /// E-AC-3 (E-RTMP `ec-3`, SRT). Re-encoded to AAC.
    Eac3,
}

/// Media handed to a pipeline, already split out of its container (FLV tags from an RTMP
/// connection or a file, MPEG-TS from SRT, RTP from WHIP).
#[derive(Debug, Clone)]
pub enum MediaInput {
    /// The decoder configuration of the video that follows (the table above).
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
    /// The decoder configuration of the audio that follows (AAC: an AudioSpecificConfig;
    /// Opus: its ID header or nothing; the others: nothing).
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
