//! The FFmpeg boundary: H.264 decoding, scaling and x264 encoding through `ffmpeg-next`.
//!
//! This is the one module of the workspace allowed to reach FFmpeg; everything here is
//! blocking and CPU-heavy and runs on the pipeline's dedicated threads, never on the async
//! executor. Timestamps are milliseconds throughout (the FLV/RTMP clock), so a decoded
//! frame's pts is the source packet's pts and an encoded packet's pts is the frame's.
//!
//! No `unsafe` is needed: ffmpeg-next's safe API covers decode, scale and encode, and the
//! decoder reads SPS/PPS in-band (the container layer inserts them before every IDR).

use std::sync::Once;

use bytes::Bytes;
use ffmpeg::codec::{self, threading};
use ffmpeg::software::scaling;
use ffmpeg::{format, frame, picture, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::IngestError;

static INIT: Once = Once::new();

/// Initialises FFmpeg once per process and quiets its logging to errors.
pub fn init() {
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::error!(error = %e, "FFmpeg failed to initialise");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    });
}

const MILLIS: Rational = Rational(1, 1000);

fn ff(context: &'static str) -> impl Fn(ffmpeg::Error) -> IngestError {
    move |source| IngestError::Ffmpeg { context, source }
}

/// Decodes the publisher's H.264 once for every encoded rung.
pub struct VideoDecoder {
    decoder: ffmpeg::decoder::Video,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoDecoder")
    }
}

impl VideoDecoder {
    /// An H.264 decoder for Annex B input.
    pub fn new() -> Result<Self, IngestError> {
        init();
        let codec = ffmpeg::decoder::find(codec::Id::H264)
            .ok_or(IngestError::MissingCodec("h264 decoder"))?;
        let mut context = codec::context::Context::new_with_codec(codec);
        // Slice threads add no delay; frame threads would add a frame per thread.
        context.set_threading(threading::Config {
            kind: threading::Type::Slice,
            count: 2,
            ..Default::default()
        });
        let mut decoder = context.decoder();
        decoder.set_packet_time_base(MILLIS);
        let decoder = decoder.video().map_err(ff("opening the H.264 decoder"))?;
        Ok(VideoDecoder { decoder })
    }

    /// Decodes one access unit; returns the frames that came out (in presentation order).
    pub fn decode(
        &mut self,
        annexb: &[u8],
        pts_ms: i64,
        dts_ms: i64,
    ) -> Result<Vec<frame::Video>, IngestError> {
        let mut packet = Packet::copy(annexb);
        packet.set_pts(Some(pts_ms));
        packet.set_dts(Some(dts_ms));
        match self.decoder.send_packet(&packet) {
            Ok(()) => {}
            // A damaged access unit is skipped; the next keyframe recovers.
            Err(ffmpeg::Error::InvalidData) => return Ok(Vec::new()),
            Err(e) => return Err(ff("decoding H.264")(e)),
        }
        self.receive()
    }

    /// Drains the frames still inside the decoder.
    pub fn flush(&mut self) -> Result<Vec<frame::Video>, IngestError> {
        self.decoder
            .send_eof()
            .map_err(ff("flushing the H.264 decoder"))?;
        self.receive()
    }

    fn receive(&mut self) -> Result<Vec<frame::Video>, IngestError> {
        let mut out = Vec::new();
        loop {
            let mut frame = frame::Video::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    let pts = frame.timestamp().or(frame.pts());
                    frame.set_pts(pts);
                    out.push(frame);
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::InvalidData) => break,
                Err(e) => return Err(ff("receiving decoded frames")(e)),
            }
        }
        Ok(out)
    }
}

/// What an encoded rung is asked for.
#[derive(Debug, Clone)]
pub struct EncodeSpec {
    /// Output width (even).
    pub width: u32,
    /// Output height (even).
    pub height: u32,
    /// Target bitrate in kb/s.
    pub bitrate_kbps: u32,
    /// VBV maximum rate in kb/s.
    pub maxrate_kbps: u32,
    /// VBV buffer in kbit.
    pub bufsize_kbits: u32,
    /// x264 preset.
    pub preset: String,
    /// Nominal frame rate (rate control needs one; timestamps stay authoritative).
    pub frame_rate: Rational,
    /// x264 threads (0 = as many as x264 likes).
    pub threads: usize,
}

/// One encoded access unit as it comes out of x264.
#[derive(Debug, Clone)]
pub struct EncodedPacket {
    /// Presentation time (ms).
    pub pts_ms: i64,
    /// Decode time (ms).
    pub dts_ms: i64,
    /// IDR.
    pub keyframe: bool,
    /// Annex B bytes (x264 puts SPS/PPS before every IDR when there is no global header).
    pub data: Bytes,
}

/// Scales decoded frames to one rung's size and encodes them with x264.
pub struct RungEncoder {
    scaler: Option<scaling::Context>,
    encoder: ffmpeg::encoder::Video,
    spec: EncodeSpec,
}

impl std::fmt::Debug for RungEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RungEncoder")
            .field("spec", &self.spec)
            .finish()
    }
}

impl RungEncoder {
    /// Opens x264 with keyframes only where forced: closed GOPs, no scene-cut keyframes,
    /// VBV-capped bitrate.
    pub fn new(spec: EncodeSpec) -> Result<Self, IngestError> {
        init();
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .ok_or(IngestError::MissingCodec("libx264 encoder"))?;
        let mut context = codec::context::Context::new_with_codec(codec);
        context.set_threading(threading::Config {
            kind: threading::Type::Frame,
            count: spec.threads,
            ..Default::default()
        });
        let mut encoder = context
            .encoder()
            .video()
            .map_err(ff("creating the x264 encoder"))?;
        encoder.set_width(spec.width);
        encoder.set_height(spec.height);
        encoder.set_format(format::Pixel::YUV420P);
        encoder.set_time_base(MILLIS);
        encoder.set_frame_rate(Some(spec.frame_rate));
        encoder.set_bit_rate(spec.bitrate_kbps as usize * 1000);
        encoder.set_max_bit_rate(spec.maxrate_kbps as usize * 1000);
        // Keyframes come only where the pipeline forces them, so keyint is just a backstop.
        let keyint = 100_000;
        let mut options = Dictionary::new();
        options.set("preset", &spec.preset);
        options.set("forced-idr", "1");
        options.set(
            "x264-params",
            &format!(
                "keyint={keyint}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={}:vbv-bufsize={}:repeat-headers=1",
                spec.maxrate_kbps, spec.bufsize_kbits
            ),
        );
        let encoder = encoder.open_with(options).map_err(ff("opening x264"))?;
        Ok(RungEncoder {
            scaler: None,
            encoder,
            spec,
        })
    }

    /// Scales and encodes one frame; `force_keyframe` starts a segment on it.
    pub fn encode(
        &mut self,
        input: &frame::Video,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedPacket>, IngestError> {
        let scaler = match &mut self.scaler {
            Some(s)
                if s.input().width == input.width()
                    && s.input().height == input.height()
                    && s.input().format == input.format() =>
            {
                s
            }
            slot => slot.insert(
                scaling::Context::get(
                    input.format(),
                    input.width(),
                    input.height(),
                    format::Pixel::YUV420P,
                    self.spec.width,
                    self.spec.height,
                    scaling::Flags::BICUBIC,
                )
                .map_err(ff("creating the scaler"))?,
            ),
        };
        let mut scaled = frame::Video::empty();
        scaler.run(input, &mut scaled).map_err(ff("scaling"))?;
        scaled.set_pts(input.pts());
        scaled.set_kind(if force_keyframe {
            picture::Type::I
        } else {
            picture::Type::None
        });
        self.encoder.send_frame(&scaled).map_err(ff("encoding"))?;
        self.receive()
    }

    /// Drains the packets still inside x264.
    pub fn flush(&mut self) -> Result<Vec<EncodedPacket>, IngestError> {
        self.encoder.send_eof().map_err(ff("flushing x264"))?;
        self.receive()
    }

    fn receive(&mut self) -> Result<Vec<EncodedPacket>, IngestError> {
        let mut out = Vec::new();
        loop {
            let mut packet = Packet::empty();
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    let (Some(pts), Some(dts), Some(data)) =
                        (packet.pts(), packet.dts(), packet.data())
                    else {
                        continue;
                    };
                    out.push(EncodedPacket {
                        pts_ms: pts,
                        dts_ms: dts,
                        keyframe: packet.is_key(),
                        data: Bytes::copy_from_slice(data),
                    });
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(ffmpeg::Error::Eof) => break,
                Err(e) => return Err(ff("receiving x264 packets")(e)),
            }
        }
        Ok(out)
    }
}
