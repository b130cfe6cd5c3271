//! The FFmpeg boundary: decoding the publisher's video (H.264, HEVC, AV1 through dav1d,
//! VP9), scaling and x264 encoding, and re-encoding audio that is not AAC (MP3, Opus,
//! AC-3, E-AC-3), through `ffmpeg-next`.
//!
//! This is the one module of the crate (and, with the `source` crate, of the workspace)
//! allowed to reach FFmpeg, and no FFmpeg type leaves it: the rest of the pipeline speaks
//! in the crate's own terms: codecs as [`VideoCodec`] and [`AudioCodec`], a frame rate as
//! a number, decoded pictures as the opaque [`DecodedFrame`], encoded media as bytes with
//! their times, FFmpeg's errors boxed inside [`IngestError::Ffmpeg`]. So a codec added to
//! the pipeline's input (issue 32: HEVC, AV1, VP9, Opus) changes this file and the input's
//! vocabulary, not the threads that carry frames around.
//!
//! Everything here is blocking and CPU-heavy and runs on the pipeline's dedicated threads,
//! never on the async executor. Timestamps are milliseconds throughout (the FLV/RTMP
//! clock), so a decoded frame's pts is the source packet's pts and an encoded packet's pts
//! is the frame's.
//!
//! Thumbnails (`ThumbnailEncoder`) are made here too: a decoded picture scaled to a
//! small size and encoded as one JPEG by FFmpeg's `mjpeg` encoder.
//!
//! Long because it is the crate's one FFmpeg boundary: decode, scale and x264, audio
//! re-encoding and the thumbnails' JPEG, each a small type over the same FFmpeg calls.
//!
//! No `unsafe` is needed: ffmpeg-next's safe API covers decode, scale and encode, and no
//! decoder needs out-of-band configuration: H.264 and HEVC parameter sets and the AV1
//! sequence header travel in-band (`super::source` puts them before every random access
//! point), VP9, Opus, AC-3 and MP3 frames describe themselves (an Opus stream without its
//! ID header decodes as stereo, which covers mono).

use std::sync::Once;

use bytes::Bytes;
use ffmpeg::codec::{self, threading};
use ffmpeg::software::scaling;
use ffmpeg::{format, frame, picture, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;
use intake::media::{AudioCodec, VideoCodec};

use crate::error::IngestError;

static INIT: Once = Once::new();

/// Initialises FFmpeg once per process and quiets its logging to errors.
pub(crate) fn init() {
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::error!(error = %e, "FFmpeg failed to initialise");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    });
}

const MILLIS: Rational = Rational(1, 1000);

/// The scaler in `slot` from `input`'s shape to `(format, width, height)`: the one held
/// while the input keeps its size and format, else a new one (bicubic) put in its place.
fn scaler_for<'a>(
    slot: &'a mut Option<scaling::Context>,
    input: &frame::Video,
    (out, width, height): (format::Pixel, u32, u32),
    what: &'static str,
) -> Result<&'a mut scaling::Context, IngestError> {
    let same = |s: &scaling::Context| {
        s.input().width == input.width()
            && s.input().height == input.height()
            && s.input().format == input.format()
    };
    if let Some(s) = slot.take().filter(same) {
        return Ok(slot.insert(s));
    }
    let fresh = scaling::Context::get(
        input.format(),
        input.width(),
        input.height(),
        out,
        width,
        height,
        scaling::Flags::BICUBIC,
    )
    .map_err(ff(what))?;
    Ok(slot.insert(fresh))
}

fn ff(context: &'static str) -> impl Fn(ffmpeg::Error) -> IngestError {
    move |source| IngestError::Ffmpeg {
        context,
        source: Box::new(source),
    }
}

/// One decoded picture, handed to every encoded rung (decoded once, encoded per rung).
/// Opaque outside this module: the picture is FFmpeg's, so only its time shows.
pub(crate) struct DecodedFrame(frame::Video);

impl DecodedFrame {
    /// Presentation time (ms), as the decoder gave it back.
    pub(crate) fn pts_ms(&self) -> Option<i64> {
        self.0.pts()
    }
}

impl std::fmt::Debug for DecodedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedFrame")
            .field("pts_ms", &self.pts_ms())
            .field("width", &self.0.width())
            .field("height", &self.0.height())
            .finish()
    }
}

/// Decodes the publisher's video once for every encoded rung.
pub(crate) struct VideoDecoder {
    decoder: ffmpeg::decoder::Video,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoDecoder")
    }
}

impl VideoDecoder {
    /// A decoder of `source` video, in the form `super::source` gives the access units
    /// (H.264 and HEVC in Annex B, AV1 as OBUs, VP9 frames).
    pub(crate) fn new(source: VideoCodec) -> Result<Self, IngestError> {
        init();
        let codec = match source {
            VideoCodec::H264 => ffmpeg::decoder::find(codec::Id::H264),
            VideoCodec::Hevc => ffmpeg::decoder::find(codec::Id::HEVC),
            // FFmpeg's own AV1 decoder only drives hardware; dav1d decodes in software.
            VideoCodec::Av1 => ffmpeg::decoder::find_by_name("libdav1d"),
            VideoCodec::Vp9 => ffmpeg::decoder::find(codec::Id::VP9),
        }
        .ok_or(IngestError::MissingCodec(match source {
            VideoCodec::H264 => "H.264 decoder",
            VideoCodec::Hevc => "HEVC decoder",
            VideoCodec::Av1 => "libdav1d AV1 decoder",
            VideoCodec::Vp9 => "VP9 decoder",
        }))?;
        let mut context = codec::context::Context::new_with_codec(codec);
        // Slice threads add no delay; frame threads would add a frame per thread.
        context.set_threading(threading::Config {
            kind: threading::Type::Slice,
            count: 2,
            ..Default::default()
        });
        let mut decoder = context.decoder();
        decoder.set_packet_time_base(MILLIS);
        let decoder = decoder.video().map_err(ff("opening the video decoder"))?;
        Ok(VideoDecoder { decoder })
    }

    /// Decodes one access unit; returns the frames that came out (in presentation order).
    pub(crate) fn decode(
        &mut self,
        annexb: &[u8],
        pts_ms: i64,
        dts_ms: i64,
    ) -> Result<Vec<DecodedFrame>, IngestError> {
        let mut packet = Packet::copy(annexb);
        packet.set_pts(Some(pts_ms));
        packet.set_dts(Some(dts_ms));
        match self.decoder.send_packet(&packet) {
            Ok(()) => {}
            // A damaged access unit is skipped; the next keyframe recovers.
            Err(ffmpeg::Error::InvalidData) => return Ok(Vec::new()),
            Err(e) => return Err(ff("decoding video")(e)),
        }
        self.receive()
    }

    /// Drains the frames still inside the decoder.
    pub(crate) fn flush(&mut self) -> Result<Vec<DecodedFrame>, IngestError> {
        self.decoder
            .send_eof()
            .map_err(ff("flushing the video decoder"))?;
        self.receive()
    }

    fn receive(&mut self) -> Result<Vec<DecodedFrame>, IngestError> {
        let mut out = Vec::new();
        loop {
            let mut frame = frame::Video::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    let pts = frame.timestamp().or(frame.pts());
                    frame.set_pts(pts);
                    out.push(DecodedFrame(frame));
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
pub(crate) struct EncodeSpec {
    /// Output width (even).
    pub(crate) width: u32,
    /// Output height (even).
    pub(crate) height: u32,
    /// Target bitrate in kb/s.
    pub(crate) bitrate_kbps: u32,
    /// VBV maximum rate in kb/s.
    pub(crate) maxrate_kbps: u32,
    /// VBV buffer in kbit.
    pub(crate) bufsize_kbits: u32,
    /// x264 preset.
    pub(crate) preset: String,
    /// Nominal frame rate, frames per second (rate control needs one; timestamps stay
    /// authoritative).
    pub(crate) frame_rate: f64,
    /// x264 threads (0 = as many as x264 likes).
    pub(crate) threads: usize,
    /// LL-HLS: no B-frames, no lookahead, slice threads (no frame-thread delay), so a
    /// frame leaves the encoder as soon as it is encoded (what `tune=zerolatency` does).
    pub(crate) low_latency: bool,
}

/// One encoded access unit as it comes out of x264.
#[derive(Debug, Clone)]
pub(crate) struct EncodedPacket {
    /// Presentation time (ms).
    pub(crate) pts_ms: i64,
    /// Decode time (ms).
    pub(crate) dts_ms: i64,
    /// IDR.
    pub(crate) keyframe: bool,
    /// Annex B bytes (x264 puts SPS/PPS before every IDR when there is no global header).
    pub(crate) data: Bytes,
}

/// Scales decoded frames to one rung's size and encodes them with x264.
pub(crate) struct RungEncoder {
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
    pub(crate) fn new(spec: EncodeSpec) -> Result<Self, IngestError> {
        init();
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .ok_or(IngestError::MissingCodec("libx264 encoder"))?;
        let mut context = codec::context::Context::new_with_codec(codec);
        context.set_threading(threading::Config {
            // Frame threads hold a frame back per thread; slices add no delay.
            kind: if spec.low_latency {
                threading::Type::Slice
            } else {
                threading::Type::Frame
            },
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
        // To a thousandth of a frame per second: 29.97 is 29970/1000, reduced.
        let frame_rate = Rational((spec.frame_rate * 1000.0).round() as i32, 1000).reduce();
        encoder.set_frame_rate(Some(frame_rate));
        encoder.set_bit_rate(spec.bitrate_kbps as usize * 1000);
        encoder.set_max_bit_rate(spec.maxrate_kbps as usize * 1000);
        // Keyframes come only where the pipeline forces them, so keyint is just a backstop.
        let keyint = 100_000;
        let mut options = Dictionary::new();
        options.set("preset", &spec.preset);
        options.set("forced-idr", "1");
        let latency = if spec.low_latency {
            // tune=zerolatency, spelled out (a tune would also replace other defaults).
            ":bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1"
        } else {
            ""
        };
        options.set(
            "x264-params",
            &format!(
                "keyint={keyint}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={}:vbv-bufsize={}:repeat-headers=1{latency}",
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
    pub(crate) fn encode(
        &mut self,
        input: &DecodedFrame,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedPacket>, IngestError> {
        let input = &input.0;
        let out = (format::Pixel::YUV420P, self.spec.width, self.spec.height);
        let scaler = scaler_for(&mut self.scaler, input, out, "creating the scaler")?;
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
    pub(crate) fn flush(&mut self) -> Result<Vec<EncodedPacket>, IngestError> {
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

/// Scales decoded pictures to a thumbnail's size and encodes each as one baseline JPEG
/// (FFmpeg's `mjpeg`, full-range 4:2:0). Kept open for a stream's whole session: one
/// picture every few seconds, on the thumbnail thread only.
pub(crate) struct ThumbnailEncoder {
    scaler: Option<scaling::Context>,
    encoder: ffmpeg::encoder::Video,
    width: u32,
    height: u32,
    /// Pictures encoded so far: the pts of the next (the encoder wants them increasing).
    count: i64,
}

impl std::fmt::Debug for ThumbnailEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThumbnailEncoder")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

impl ThumbnailEncoder {
    /// JPEG quality scale (FFmpeg's `-q:v`, 2 best .. 31 worst): 5 keeps a 320-pixel
    /// picture sharp at a few tens of kilobytes.
    const QSCALE: usize = 5;
    /// FFmpeg's `FF_QP2LAMBDA`: a quality scale in the encoder's lambda units.
    const QP2LAMBDA: usize = 118;

    /// An encoder of `width` × `height` JPEGs (even sizes).
    pub(crate) fn new(width: u32, height: u32) -> Result<Self, IngestError> {
        init();
        let codec = ffmpeg::encoder::find(codec::Id::MJPEG)
            .ok_or(IngestError::MissingCodec("mjpeg encoder"))?;
        let context = codec::context::Context::new_with_codec(codec);
        let mut encoder = context
            .encoder()
            .video()
            .map_err(ff("creating the JPEG encoder"))?;
        encoder.set_width(width);
        encoder.set_height(height);
        encoder.set_format(format::Pixel::YUVJ420P);
        encoder.set_time_base(Rational(1, 1));
        encoder.set_flags(codec::Flags::QSCALE);
        encoder.set_quality(Self::QSCALE * Self::QP2LAMBDA);
        let encoder = encoder
            .open_with(Dictionary::new())
            .map_err(ff("opening the JPEG encoder"))?;
        Ok(ThumbnailEncoder {
            scaler: None,
            encoder,
            width,
            height,
            count: 0,
        })
    }

    /// Scales `input` and encodes it: the JPEG's bytes.
    pub(crate) fn encode(&mut self, input: &DecodedFrame) -> Result<Bytes, IngestError> {
        let input = &input.0;
        let out = (format::Pixel::YUVJ420P, self.width, self.height);
        let scaler = scaler_for(
            &mut self.scaler,
            input,
            out,
            "creating the thumbnail scaler",
        )?;
        let mut scaled = frame::Video::empty();
        scaler
            .run(input, &mut scaled)
            .map_err(ff("scaling a thumbnail"))?;
        scaled.set_pts(Some(self.count));
        scaled.set_kind(picture::Type::I);
        self.count += 1;
        self.encoder
            .send_frame(&scaled)
            .map_err(ff("encoding a thumbnail"))?;
        let mut packet = Packet::empty();
        self.encoder
            .receive_packet(&mut packet)
            .map_err(ff("receiving a thumbnail"))?;
        packet
            .data()
            .map(Bytes::copy_from_slice)
            .ok_or(IngestError::PipelineStopped(
                "the JPEG encoder gave no picture",
            ))
    }
}

/// Sample rate of re-encoded audio.
pub(crate) const AAC_RATE: u32 = 48_000;
const AAC_FRAME: usize = 1024;

/// Re-encodes a publisher's non-AAC audio (MP3, the FLV default of many encoders; Opus and
/// AC-3 / E-AC-3 from E-RTMP and SRT) to AAC-LC, 48 kHz stereo, so every rung can carry it
/// in MPEG-TS and CMAF for HLS players.
pub(crate) struct AudioTranscoder {
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<ffmpeg::software::resampling::Context>,
    encoder: ffmpeg::encoder::Audio,
    /// Resampled samples per channel waiting for a whole AAC frame.
    pending: [Vec<f32>; 2],
    /// Samples handed to the encoder so far: its clock.
    samples_out: i64,
    /// Publisher time of the first sample.
    base_ms: Option<i64>,
}

impl std::fmt::Debug for AudioTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AudioTranscoder")
    }
}

impl AudioTranscoder {
    /// A transcoder from `from` (for example [`AudioCodec::Mp3`]).
    pub(crate) fn new(from: AudioCodec) -> Result<Self, IngestError> {
        init();
        let from = match from {
            AudioCodec::Aac => codec::Id::AAC,
            AudioCodec::Mp3 => codec::Id::MP3,
            AudioCodec::Opus => codec::Id::OPUS,
            AudioCodec::Ac3 => codec::Id::AC3,
            AudioCodec::Eac3 => codec::Id::EAC3,
        };
        let decoder_codec =
            ffmpeg::decoder::find(from).ok_or(IngestError::MissingCodec("audio decoder"))?;
        let mut decoder = codec::context::Context::new_with_codec(decoder_codec).decoder();
        decoder.set_packet_time_base(MILLIS);
        let decoder = decoder.audio().map_err(ff("opening the audio decoder"))?;
        let aac = ffmpeg::encoder::find(codec::Id::AAC)
            .ok_or(IngestError::MissingCodec("AAC encoder"))?;
        let mut encoder = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(ff("creating the AAC encoder"))?;
        encoder.set_rate(AAC_RATE as i32);
        encoder.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
        encoder.set_format(format::Sample::F32(format::sample::Type::Planar));
        encoder.set_bit_rate(128_000);
        encoder.set_time_base(Rational(1, AAC_RATE as i32));
        let encoder = encoder.open().map_err(ff("opening the AAC encoder"))?;
        Ok(AudioTranscoder {
            decoder,
            resampler: None,
            encoder,
            pending: [Vec::new(), Vec::new()],
            samples_out: 0,
            base_ms: None,
        })
    }

    /// The AudioSpecificConfig of what comes out: AAC-LC, 48 kHz, stereo.
    pub(crate) fn audio_specific_config() -> [u8; 2] {
        // object type 2 (5 bits), frequency index 3 = 48 kHz (4 bits), channels 2 (4 bits).
        let bits: u16 = (2 << 11) | (3 << 7) | (2 << 3);
        bits.to_be_bytes()
    }

    /// Decodes one publisher packet; returns raw AAC frames with their times (ms).
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        pts_ms: i64,
    ) -> Result<Vec<(i64, Bytes)>, IngestError> {
        self.base_ms.get_or_insert(pts_ms);
        let mut packet = Packet::copy(data);
        packet.set_pts(Some(pts_ms));
        match self.decoder.send_packet(&packet) {
            Ok(()) => {}
            Err(ffmpeg::Error::InvalidData) => return Ok(Vec::new()),
            Err(e) => return Err(ff("decoding audio")(e)),
        }
        let mut out = Vec::new();
        loop {
            let mut decoded = frame::Audio::empty();
            match self.decoder.receive_frame(&mut decoded) {
                Ok(()) => self.resample(&decoded)?,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(ffmpeg::Error::Eof | ffmpeg::Error::InvalidData) => break,
                Err(e) => return Err(ff("receiving decoded audio")(e)),
            }
        }
        self.encode_pending(&mut out)?;
        Ok(out)
    }

    fn resample(&mut self, decoded: &frame::Audio) -> Result<(), IngestError> {
        let mut layout = decoded.channel_layout();
        if layout.is_empty() {
            layout = ffmpeg::ChannelLayout::default(i32::from(decoded.channels().max(1)));
        }
        let fltp = format::Sample::F32(format::sample::Type::Planar);
        let needs_new = self.resampler.as_ref().is_none_or(|r| {
            r.input().format != decoded.format()
                || r.input().channel_layout != layout
                || r.input().rate != decoded.rate()
        });
        if needs_new {
            self.resampler = Some(
                ffmpeg::software::resampling::Context::get(
                    decoded.format(),
                    layout,
                    decoded.rate(),
                    fltp,
                    ffmpeg::ChannelLayout::STEREO,
                    AAC_RATE,
                )
                .map_err(ff("creating the audio resampler"))?,
            );
        }
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        // Room for the rate change plus what the resampler buffered.
        let capacity = decoded.samples() * AAC_RATE as usize / decoded.rate().max(1) as usize + 256;
        let mut resampled = frame::Audio::new(fltp, capacity, ffmpeg::ChannelLayout::STEREO);
        let mut input = decoded.clone();
        input.set_channel_layout(layout);
        resampler
            .run(&input, &mut resampled)
            .map_err(ff("resampling audio"))?;
        let n = resampled.samples();
        for (ch, pending) in self.pending.iter_mut().enumerate() {
            let plane = resampled.plane::<f32>(ch);
            pending.extend_from_slice(&plane[..n.min(plane.len())]);
        }
        Ok(())
    }

    fn encode_pending(&mut self, out: &mut Vec<(i64, Bytes)>) -> Result<(), IngestError> {
        let fltp = format::Sample::F32(format::sample::Type::Planar);
        while self.pending[0].len() >= AAC_FRAME && self.pending[1].len() >= AAC_FRAME {
            let mut frame = frame::Audio::new(fltp, AAC_FRAME, ffmpeg::ChannelLayout::STEREO);
            frame.set_rate(AAC_RATE);
            for (ch, pending) in self.pending.iter_mut().enumerate() {
                frame.plane_mut::<f32>(ch)[..AAC_FRAME].copy_from_slice(&pending[..AAC_FRAME]);
                pending.drain(..AAC_FRAME);
            }
            frame.set_pts(Some(self.samples_out));
            self.samples_out += AAC_FRAME as i64;
            self.encoder
                .send_frame(&frame)
                .map_err(ff("encoding AAC"))?;
            loop {
                let mut packet = Packet::empty();
                match self.encoder.receive_packet(&mut packet) {
                    Ok(()) => {
                        let (Some(pts), Some(data)) = (packet.pts(), packet.data()) else {
                            continue;
                        };
                        let ms = self.base_ms.unwrap_or(0) + pts * 1000 / i64::from(AAC_RATE);
                        out.push((ms, Bytes::copy_from_slice(data)));
                    }
                    Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                        break
                    }
                    Err(ffmpeg::Error::Eof) => break,
                    Err(e) => return Err(ff("receiving AAC packets")(e)),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use container::aac::AacConfig;
    use container::flv::{parse_audio_tag, AudioFourCc, AudioTag, FlvReader, TagKind};
    use std::process::Command;

    /// A decoded picture comes out as a JPEG of the asked size that ffprobe reads, every
    /// time it is asked (the encoder stays open for the session).
    #[test]
    fn thumbnails_are_jpegs_of_the_asked_size() {
        init();
        let mut picture = frame::Video::new(format::Pixel::YUV420P, 640, 360);
        for plane in 0..3 {
            let fill = if plane == 0 { 120 } else { 60 };
            picture.data_mut(plane).fill(fill);
        }
        picture.set_pts(Some(40));
        let decoded = DecodedFrame(picture);
        let mut encoder = ThumbnailEncoder::new(320, 180).expect("opens");
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..2 {
            let jpeg = encoder.encode(&decoded).expect("encodes");
            assert!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "{i}: not a JPEG");
            assert!(jpeg.ends_with(&[0xff, 0xd9]), "{i}: no end of image");
            assert!(
                jpeg.len() < domain::MAX_THUMBNAIL_BYTES,
                "{i}: {} bytes",
                jpeg.len()
            );
            let path = dir.path().join(format!("{i}.jpg"));
            std::fs::write(&path, &jpeg).expect("written");
            let out = Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-show_entries",
                    "stream=codec_name,width,height",
                ])
                .args(["-of", "csv=p=0"])
                .arg(&path)
                .output()
                .expect("ffprobe runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "mjpeg,320,180");
        }
    }

    #[test]
    fn mp3_from_an_flv_comes_out_as_decodable_aac() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flv = dir.path().join("mp3.flv");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:sample_rate=44100",
                "-t",
                "2",
            ])
            .args(["-c:a", "libmp3lame", "-b:a", "128k", "-f", "flv"])
            .arg(&flv)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        let mut reader = FlvReader::new(std::fs::File::open(&flv).expect("open")).expect("flv");
        let mut transcoder = AudioTranscoder::new(AudioCodec::Mp3).expect("opens");
        let config =
            AacConfig::parse(&AudioTranscoder::audio_specific_config()).expect("valid ASC");
        assert_eq!((config.sample_rate, config.channel_config), (48_000, 2));
        let mut adts = Vec::new();
        let mut frames = Vec::new();
        while let Some(tag) = reader.next_tag().expect("tag") {
            if !matches!(tag.kind, TagKind::Audio) {
                continue;
            }
            let AudioTag::CodedFrames {
                codec: AudioFourCc::Mp3,
                data,
            } = parse_audio_tag(&tag.body).expect("audio")
            else {
                panic!("expected MP3");
            };
            for (pts, raw) in transcoder
                .push(&data, i64::from(tag.timestamp_ms))
                .expect("transcodes")
            {
                adts.extend_from_slice(&config.adts_header(raw.len()).expect("fits"));
                adts.extend_from_slice(&raw);
                frames.push(pts);
            }
        }
        // 2 s at 48 kHz is 93.75 frames of 1024; the decoder and encoder hold back a few.
        assert!((85..=95).contains(&frames.len()), "{} frames", frames.len());
        assert!(
            frames.windows(2).all(|w| w[0] < w[1]),
            "timestamps increase"
        );
        let aac = dir.path().join("out.aac");
        std::fs::write(&aac, &adts).expect("write");
        let probe = testkit::ffmpeg::ffprobe(
            &aac,
            &["-show_entries", "stream=codec_name,sample_rate,channels"],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let stream = &probe["streams"][0];
        assert_eq!(
            (
                &stream["codec_name"],
                &stream["sample_rate"],
                &stream["channels"]
            ),
            (&"aac".into(), &"48000".into(), &2.into())
        );
    }

    /// Opus (mono, as OBS's default microphone sends it), AC-3 and E-AC-3 from MPEG-TS, as
    /// an SRT publisher sends them, come out as AAC-LC 48 kHz stereo, about as many frames
    /// as the input lasts.
    #[test]
    fn opus_ac3_and_eac3_come_out_as_aac() {
        use intake::media::MediaInput;
        let dir = tempfile::tempdir().expect("tempdir");
        for (codec, args) in [
            (AudioCodec::Opus, &["-c:a", "libopus", "-ac", "1"][..]),
            (AudioCodec::Ac3, &["-c:a", "ac3"][..]),
            (AudioCodec::Eac3, &["-c:a", "eac3"][..]),
        ] {
            let ts = dir.path().join("audio.ts");
            let status = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
                .args([
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=1000:sample_rate=48000",
                    "-t",
                    "2",
                ])
                .args(args)
                .args(["-f", "mpegts"])
                .arg(&ts)
                .status()
                .expect("ffmpeg runs");
            assert!(status.success());
            let mut inputs = intake::srt::TsInputs::new();
            let mut media = Vec::new();
            inputs
                .push(&std::fs::read(&ts).expect("read"), &mut media)
                .expect("valid MPEG-TS");
            inputs.finish(&mut media).expect("valid MPEG-TS");
            let mut transcoder = AudioTranscoder::new(codec).expect("opens");
            let mut frames = Vec::new();
            for input in media {
                if let MediaInput::Audio {
                    codec: c,
                    pts_ms,
                    data,
                } = input
                {
                    assert_eq!(c, codec);
                    frames.extend(transcoder.push(&data, pts_ms).expect("transcodes"));
                }
            }
            // 2 s at 48 kHz is 93.75 AAC frames; decoders and the encoder hold a few back.
            assert!(
                (80..=95).contains(&frames.len()),
                "{codec:?}: {} frames",
                frames.len()
            );
            assert!(
                frames.windows(2).all(|w| w[0].0 < w[1].0),
                "{codec:?}: times increase"
            );
        }
    }
}
