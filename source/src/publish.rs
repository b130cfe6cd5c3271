//! The output side: an FLV muxer (file or RTMP), or an MPEG-TS one over SRT, with an x264
//! video and an AAC audio encoder feeding it.

use ffmpeg::{codec, encoder, format, frame, ChannelLayout, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::config::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE};
use crate::{redact_output, SourceConfig, SourceError};

const X264: &str = "libx264";
const AAC: &str = "aac";

/// One encoder and the muxer stream it feeds.
struct Track<E> {
    encoder: E,
    info: TrackInfo,
}

/// Where a track's packets go and how their timestamps convert.
#[derive(Debug, Clone, Copy)]
struct TrackInfo {
    /// `libx264` or `aac`, for errors and logs.
    codec: &'static str,
    /// Index of the stream in the muxer.
    index: usize,
    /// Time base of frames sent to the encoder (and of the packets it returns).
    encoder_time_base: Rational,
    /// Time base the muxer chose for the stream in `write_header` (FLV: 1/1000).
    stream_time_base: Rational,
}

/// An open output with both encoders, after the header is written.
pub(crate) struct Publisher {
    octx: format::context::Output,
    /// The output for logs and errors, stream key redacted.
    output: String,
    video: Track<encoder::Video>,
    audio: Track<encoder::Audio>,
    /// Encoded payload bytes handed to the muxer (FLV tag overhead not counted).
    bytes_out: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("output", &self.output)
            .field("bytes_out", &self.bytes_out)
            .finish_non_exhaustive()
    }
}

fn is_rtmp(output: &str) -> bool {
    output
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme.to_ascii_lowercase().starts_with("rtmp"))
}

/// `srt://HOST:PORT?streamid=…`: MPEG-TS over FFmpeg's libsrt protocol (as a caller).
fn is_srt(output: &str) -> bool {
    output
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("srt"))
}

impl Publisher {
    /// Opens the output (for RTMP: connects and publishes), sets up both encoders and
    /// writes the FLV header. `config` must already be validated.
    pub(crate) fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let output = redact_output(&config.output);
        let x264 =
            encoder::find_by_name(X264).ok_or(SourceError::MissingComponent("libx264 encoder"))?;
        let aac = encoder::find_by_name(AAC)
            .ok_or(SourceError::MissingComponent("native aac encoder"))?;

        let muxer = if is_srt(&config.output) {
            "mpegts"
        } else {
            "flv"
        };
        let mut octx =
            format::output_as(&config.output, muxer).map_err(|source| SourceError::Open {
                output: output.clone(),
                source,
            })?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

        let video = open_video(config, x264, global_header)?;
        let audio = open_audio(config, aac, global_header)?;

        let fps = Rational::new(config.fps as i32, 1);
        let video_index = {
            let mut stream = octx.add_stream(x264).map_err(|source| SourceError::Open {
                output: output.clone(),
                source,
            })?;
            stream.set_parameters(&video);
            stream.set_time_base(video.time_base());
            // FLV's onMetaData `framerate` comes from here.
            stream.set_avg_frame_rate(fps);
            stream.set_rate(fps);
            stream.index()
        };
        let audio_index = {
            let mut stream = octx.add_stream(aac).map_err(|source| SourceError::Open {
                output: output.clone(),
                source,
            })?;
            stream.set_parameters(&audio);
            stream.set_time_base(audio.time_base());
            stream.index()
        };

        // An RTMP peer cannot be seeked back into, so the muxer must not try to patch
        // duration and file size into the header at the end (it would only warn).
        let mut muxer_options = Dictionary::new();
        if is_rtmp(&config.output) {
            muxer_options.set("flvflags", "no_duration_filesize");
        }
        // ffmpeg-next ties the returned leftovers to `&mut octx`; copy them out.
        let unused: Vec<(String, String)> = octx
            .write_header_with(muxer_options)
            .map_err(|source| SourceError::Write {
                output: output.clone(),
                stage: "header",
                source,
            })?
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (key, value) in unused {
            tracing::warn!(key, value, "FLV muxer ignored an option");
        }

        // The muxer may replace the time bases we suggested (FLV always uses 1/1000),
        // so read them back only now.
        let stream_time_base = |index: usize| {
            octx.stream(index)
                .map(|s| s.time_base())
                .unwrap_or(Rational::new(1, 1000))
        };
        let video = Track {
            info: TrackInfo {
                codec: X264,
                index: video_index,
                encoder_time_base: video.time_base(),
                stream_time_base: stream_time_base(video_index),
            },
            encoder: video,
        };
        let audio = Track {
            info: TrackInfo {
                codec: AAC,
                index: audio_index,
                encoder_time_base: audio.time_base(),
                stream_time_base: stream_time_base(audio_index),
            },
            encoder: audio,
        };
        tracing::debug!(
            video_time_base = %video.info.stream_time_base,
            audio_time_base = %audio.info.stream_time_base,
            "FLV header written"
        );
        Ok(Self {
            octx,
            output,
            video,
            audio,
            bytes_out: 0,
        })
    }

    /// Encodes one picture whose presentation time is `pts` frames.
    pub(crate) fn send_video(
        &mut self,
        frame: &mut frame::Video,
        pts: i64,
    ) -> Result<(), SourceError> {
        frame.set_pts(Some(pts));
        // Let x264 choose frame types; only `keyint` decides where IDRs go.
        frame.set_kind(ffmpeg::picture::Type::None);
        let codec = self.video.info.codec;
        self.video
            .encoder
            .send_frame(frame)
            .map_err(|source| SourceError::Encode { codec, source })?;
        self.drain_video()
    }

    /// Encodes one block of audio whose first sample is sample number `pts`.
    pub(crate) fn send_audio(
        &mut self,
        frame: &mut frame::Audio,
        pts: i64,
    ) -> Result<(), SourceError> {
        frame.set_pts(Some(pts));
        let codec = self.audio.info.codec;
        self.audio
            .encoder
            .send_frame(frame)
            .map_err(|source| SourceError::Encode { codec, source })?;
        self.drain_audio()
    }

    /// Flushes both encoders and writes the trailer; for RTMP, closing the output
    /// afterwards unpublishes the stream.
    pub(crate) fn finish(mut self) -> Result<u64, SourceError> {
        for (codec, result) in [
            (self.video.info.codec, self.video.encoder.send_eof()),
            (self.audio.info.codec, self.audio.encoder.send_eof()),
        ] {
            result.map_err(|source| SourceError::Encode { codec, source })?;
        }
        self.drain_video()?;
        self.drain_audio()?;
        self.octx
            .write_trailer()
            .map_err(|source| SourceError::Write {
                output: self.output.clone(),
                stage: "trailer",
                source,
            })?;
        Ok(self.bytes_out)
    }

    /// Encoded payload bytes so far.
    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    fn drain_video(&mut self) -> Result<(), SourceError> {
        drain(
            &mut self.octx,
            &self.output,
            &mut self.bytes_out,
            &mut self.video.encoder,
            self.video.info,
        )
    }

    fn drain_audio(&mut self) -> Result<(), SourceError> {
        drain(
            &mut self.octx,
            &self.output,
            &mut self.bytes_out,
            &mut self.audio.encoder,
            self.audio.info,
        )
    }
}

/// Moves every packet the encoder has ready into the muxer.
fn drain(
    octx: &mut format::context::Output,
    output: &str,
    bytes_out: &mut u64,
    encoder: &mut encoder::Encoder,
    track: TrackInfo,
) -> Result<(), SourceError> {
    let mut packet = Packet::empty();
    loop {
        match encoder.receive_packet(&mut packet) {
            Ok(()) => {}
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                return Ok(())
            }
            Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(source) => {
                return Err(SourceError::Encode {
                    codec: track.codec,
                    source,
                })
            }
        }
        packet.set_stream(track.index);
        // Encoder packets carry pts/dts in the encoder's time base; the muxer wants
        // the stream's. `rescale_ts` also rescales `duration`.
        packet.rescale_ts(track.encoder_time_base, track.stream_time_base);
        *bytes_out += packet.size() as u64;
        packet
            .write_interleaved(octx)
            .map_err(|source| SourceError::Write {
                output: output.to_owned(),
                stage: "packet",
                source,
            })?;
    }
}

fn open_video(
    config: &SourceConfig,
    codec: ffmpeg::Codec,
    global_header: bool,
) -> Result<encoder::Video, SourceError> {
    let err = |source| SourceError::EncoderOpen {
        codec: X264,
        source,
    };
    let mut video = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(err)?;
    let gop = config.gop_frames()?;
    let bitrate = config.video_bitrate_kbps as usize * 1000;
    video.set_width(config.width);
    video.set_height(config.height);
    video.set_format(format::Pixel::YUV420P);
    video.set_time_base(Rational::new(1, config.fps as i32));
    video.set_frame_rate(Some(Rational::new(config.fps as i32, 1)));
    video.set_gop(gop);
    // CBR-ish like OBS: target = cap, one second of VBV buffer.
    video.set_bit_rate(bitrate);
    video.set_max_bit_rate(bitrate);
    let mut options = Dictionary::new();
    // Flags go through the dictionary as `+flag`, which ORs them in. ffmpeg-next's
    // `set_flags` overwrites the whole word and would silently drop libx264's codec
    // default `+cgop`, turning on open GOPs: B-frames after a keyframe would then
    // reference the previous GOP and a segment cut at that keyframe would not decode
    // on its own. Closed GOP is spelled out here so it does not hang on that default.
    add_flags(&mut options, true, global_header);
    options.set("preset", "veryfast");
    if config.low_latency {
        // No B-frames, no lookahead, slice threads instead of frame threads: every frame
        // leaves the encoder as soon as it is encoded.
        options.set("tune", "zerolatency");
    }
    // `bufsize` is a generic AVCodecContext option (no setter in ffmpeg-next);
    // avcodec_open2 applies generic and libx264-private options from one dictionary.
    options.set("bufsize", &bitrate.to_string());
    // An IDR exactly every `gop` frames and nowhere else, so segments cut on
    // keyframes all have the same length. B-frames stay at the preset's default (3),
    // as OBS sends them, so composition offsets reach the ingest.
    options.set(
        "x264-params",
        &format!("keyint={gop}:min-keyint={gop}:scenecut=0"),
    );
    video.open_with(options).map_err(err)
}

fn open_audio(
    config: &SourceConfig,
    codec: ffmpeg::Codec,
    global_header: bool,
) -> Result<encoder::Audio, SourceError> {
    let err = |source| SourceError::EncoderOpen { codec: AAC, source };
    let mut audio = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(err)?;
    audio.set_rate(AUDIO_SAMPLE_RATE as i32);
    audio.set_format(format::Sample::F32(format::sample::Type::Planar));
    // On FFmpeg 5.1 this sets the deprecated `channel_layout` mask, which
    // avcodec_open2 converts to `ch_layout` (and derives the channel count from);
    // `set_channels` is deliberately not used: it does not exist on FFmpeg 7 builds.
    audio.set_channel_layout(ChannelLayout::STEREO);
    audio.set_time_base(Rational::new(1, AUDIO_SAMPLE_RATE as i32));
    audio.set_bit_rate(config.audio_bitrate_kbps as usize * 1000);
    let mut options = Dictionary::new();
    add_flags(&mut options, false, global_header);
    let audio = audio.open_with(options).map_err(err)?;
    let frame_size = audio.frame_size() as usize;
    if frame_size != AUDIO_FRAME_SAMPLES {
        tracing::warn!(
            frame_size,
            "aac encoder frame size is not {AUDIO_FRAME_SAMPLES}"
        );
    }
    Ok(audio)
}

/// Adds (never replaces) closed-GOP and global-header flags to the codec's defaults.
fn add_flags(options: &mut Dictionary, closed_gop: bool, global_header: bool) {
    let mut flags = String::new();
    if closed_gop {
        flags.push_str("+cgop");
    }
    if global_header {
        flags.push_str("+global_header");
    }
    // An empty value would reset the flags to zero rather than leave them alone.
    if !flags.is_empty() {
        options.set("flags", &flags);
    }
}

/// A fresh block of planar float audio in the encoder's layout.
pub(crate) fn audio_frame() -> frame::Audio {
    let mut frame = frame::Audio::new(
        format::Sample::F32(format::sample::Type::Planar),
        AUDIO_FRAME_SAMPLES,
        ChannelLayout::STEREO,
    );
    frame.set_rate(AUDIO_SAMPLE_RATE);
    frame
}
