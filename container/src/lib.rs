//! Containers and codecs, pure: bytes in, bytes or values out. No sockets, no clocks, no
//! ffmpeg; the only I/O is [`FlvReader`] pulling from a [`std::io::Read`].
//!
//! A crate of its own (it was `ingest::container`) because it imports nothing of the
//! ingest: the ingest's RTMP, SRT and WHIP inputs and its pipeline use it, and the fuzz
//! harnesses (`fuzzing`) reach its parsers without linking FFmpeg or OpenSSL.
//!
//! The path of a publish through this crate: an RTMP message body is parsed by
//! [`flv`] into a [`VideoTag`] or [`AudioTag`]; their configuration records become an
//! [`AvcConfig`] ([`h264`]) and an [`AacConfig`] ([`aac`]); frames are converted to Annex B
//! ([`avcc_to_annexb`]) and ADTS ([`AacConfig::adts_header`]); [`ts::TsMuxer`] turns
//! a segment's worth of them into MPEG-TS; [`fmp4::Fmp4Muxer`] writes CMAF (an init
//! segment, then fragments) from AVCC samples ([`annexb_to_avcc`]) and raw AAC frames.
//!
//! - [`flv`]: RTMP audio/video message bodies (= FLV tag bodies) and FLV files;
//!   [`ertmp`]: their Enhanced RTMP forms (FourCC, multitrack, ModEx).
//! - [`hevc`], [`av1`], [`vp9`]: the configuration records, picture sizes, codec strings
//!   and sample forms of the codecs Enhanced RTMP and SRT bring.
//! - [`ts_demux`]: the bounded MPEG-TS demuxer for SRT publishers.
//! - [`h264`]: AVCDecoderConfigurationRecord, AVCC → Annex B, SPS picture size, codec
//!   strings.
//! - [`aac`]: AudioSpecificConfig, ADTS headers, frame durations, codec strings.
//! - [`ts`]: the MPEG-TS muxer for HLS segments.
//! - [`fmp4`]: the CMAF (fragmented MP4) muxer for segments and LL-HLS parts.
//! - [`error`]: [`ContainerError`], the crate's one error enum.
//!
//! Everything here parses input a publisher controls, so nothing here may panic on any
//! input; each parser has a property test feeding it random bytes.

pub mod aac;
pub mod av1;
mod bits;
pub mod error;
pub mod ertmp;
pub mod flv;
pub mod fmp4;
pub mod h264;
pub mod hevc;
pub mod ts;
pub mod ts_demux;
pub mod vp9;

pub use aac::AacConfig;
pub use error::ContainerError;
pub use flv::{
    parse_audio_tag, parse_video_tag, AudioFourCc, AudioTag, FlvReader, FlvTag, TagKind,
    VideoFourCc, VideoTag,
};
pub use h264::{
    annexb_nals, annexb_to_avcc, avcc_to_annexb, codec_string_from_annexb, sps_dimensions,
    AvcConfig, SpsInfo,
};
pub use ts::{TsAudio, TsMuxer, TsVideo};

#[cfg(test)]
mod tests {
    //! The whole layer against real tools: ffmpeg writes an FLV, this crate turns it into
    //! TS, ffprobe reads the TS back.

    use std::fs::File;
    use std::io::BufReader;
    use std::path::Path;

    use bytes::Bytes;
    use testkit::ffmpeg::{self, frames, TestPattern};

    use super::*;

    /// Where the presentation of the test stream starts: 10 s in, so the PCR (0.7 s ahead)
    /// never saturates at zero and the conversion cannot underflow.
    const BASE_90K: i64 = 900_000;

    struct Converted {
        avc: AvcConfig,
        aac: AacConfig,
        video: Vec<TsVideo>,
        audio: Vec<TsAudio>,
    }

    /// Reads an FLV with [`FlvReader`] and converts it as the ingest pipeline does.
    fn convert(path: &Path) -> Converted {
        let file = File::open(path).expect("ffmpeg wrote the FLV");
        let mut reader = FlvReader::new(BufReader::new(file)).expect("FLV header");
        let (mut avc, mut aac) = (None, None);
        let (mut video, mut audio) = (Vec::new(), Vec::new());
        while let Some(tag) = reader.next_tag().expect("valid FLV") {
            let dts = BASE_90K + i64::from(tag.timestamp_ms) * 90;
            match tag.kind {
                TagKind::Video => match parse_video_tag(&tag.body).expect("valid video tag") {
                    VideoTag::SequenceStart { config, .. } => {
                        avc = Some(AvcConfig::parse(&config).expect("valid record"));
                    }
                    VideoTag::CodedFrames {
                        keyframe,
                        composition_time_ms,
                        data,
                        ..
                    } => {
                        let config = avc.as_ref().expect("sequence header before frames");
                        let mut annexb = Vec::new();
                        avcc_to_annexb(config, &data, &mut annexb).expect("valid AU");
                        let pts = dts + i64::from(composition_time_ms) * 90;
                        video.push(TsVideo {
                            pts_90k: u64::try_from(pts).expect("positive"),
                            dts_90k: u64::try_from(dts).expect("positive"),
                            keyframe,
                            data: Bytes::from(annexb),
                        });
                    }
                    // ffmpeg's FLV muxer ends the stream with one.
                    VideoTag::SequenceEnd => {}
                    other => panic!("unexpected video tag {other:?}"),
                },
                TagKind::Audio => match parse_audio_tag(&tag.body).expect("valid audio tag") {
                    AudioTag::SequenceStart { config, .. } => {
                        aac = Some(AacConfig::parse(&config).expect("valid ASC"));
                    }
                    AudioTag::CodedFrames { data: raw, .. } => {
                        let config = aac.as_ref().expect("sequence header before frames");
                        let mut frame = config.adts_header(raw.len()).expect("fits").to_vec();
                        frame.extend_from_slice(&raw);
                        audio.push(TsAudio {
                            pts_90k: u64::try_from(dts).expect("positive"),
                            data: Bytes::from(frame),
                        });
                    }
                    other => panic!("unexpected audio tag {other:?}"),
                },
                TagKind::Script => {}
            }
        }
        Converted {
            avc: avc.expect("an AVC sequence header"),
            aac: aac.expect("an AAC sequence header"),
            video,
            audio,
        }
    }

    /// ffprobe's view of a TS file; fails on anything ffprobe reports as an error.
    fn probe(path: &Path) -> serde_json::Value {
        ffmpeg::streams_and_frames(path).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Two seconds of 320x240 x264 (High, B-frames, a keyframe a second) and AAC, as
    /// ffmpeg's FLV muxer writes them; in `dir`.
    fn two_seconds_of_flv(dir: &Path) -> std::path::PathBuf {
        let flv = dir.join("in.flv");
        TestPattern::new(320, 240, 30, 2)
            .video_codec(&["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30"])
            .fast()
            .write_flv(&flv)
            .unwrap_or_else(|e| panic!("{e:#}"));
        flv
    }

    #[test]
    fn ffmpeg_flv_to_ts_reads_back_in_ffprobe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flv = two_seconds_of_flv(dir.path());

        let input = convert(&flv);
        assert_eq!(input.avc.dimensions().expect("valid SPS"), (320, 240));
        assert_eq!(
            codec_string_from_annexb(&input.video[0].data),
            Some(input.avc.codec_string()),
            "the first keyframe carries the configuration's SPS in-band"
        );
        assert_eq!(input.aac.codec_string(), "mp4a.40.2");
        assert!(
            input.video.len() >= 59 && input.audio.len() >= 80,
            "2 s of media"
        );
        assert!(input.video[0].keyframe);
        assert!(
            input.video.iter().any(|v| v.pts_90k != v.dts_90k),
            "x264 B-frames exercise the DTS field"
        );

        // Two segments, cut at the second keyframe (1 s), through one muxer.
        let cut = input
            .video
            .iter()
            .skip(1)
            .position(|v| v.keyframe)
            .expect("-g 30 gives a second keyframe")
            + 1;
        let cut_dts = input.video[cut].dts_90k;
        let audio_cut = input.audio.partition_point(|a| a.pts_90k < cut_dts);
        let mut muxer = TsMuxer::new(true);
        let first = muxer.segment(&input.video[..cut], &input.audio[..audio_cut]);
        let second = muxer.segment(&input.video[cut..], &input.audio[audio_cut..]);

        let whole = dir.path().join("whole.ts");
        let mut bytes = first.to_vec();
        bytes.extend_from_slice(&second);
        std::fs::write(&whole, &bytes).expect("write TS");
        let alone = dir.path().join("second.ts");
        std::fs::write(&alone, &second).expect("write TS");

        let probed = probe(&whole);
        let streams = probed["streams"].as_array().expect("streams");
        assert_eq!(streams.len(), 2, "{streams:?}");
        let video = streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .expect("a video stream");
        assert_eq!(video["codec_name"], "h264");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(320), Some(240))
        );
        assert_eq!(video["id"], "0x100");
        let audio = streams
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .expect("an audio stream");
        assert_eq!(audio["codec_name"], "aac");
        assert_eq!(audio["id"], "0x101");

        let video_frames = frames(&probed, "video");
        assert_eq!(
            video_frames.len(),
            input.video.len(),
            "every video frame decodes"
        );
        assert_eq!(
            video_frames[0]["key_frame"], 1,
            "the segment starts on a keyframe"
        );
        assert_eq!(
            frames(&probed, "audio").len(),
            input.audio.len(),
            "every AAC frame decodes"
        );

        // The second segment plays on its own: it brings PAT, PMT, SPS and PPS.
        let probed = probe(&alone);
        let video_frames = frames(&probed, "video");
        assert_eq!(video_frames.len(), input.video.len() - cut);
        assert_eq!(video_frames[0]["key_frame"], 1);
        assert_eq!(
            frames(&probed, "audio").len(),
            input.audio.len() - audio_cut
        );
    }

    #[test]
    fn ffmpeg_flv_to_cmaf_reads_back_in_ffprobe() {
        use fmp4::{AudioTrack, Fmp4Muxer, Sample, VideoConfig, VideoTrack};

        let dir = tempfile::tempdir().expect("tempdir");
        let flv = two_seconds_of_flv(dir.path());
        let input = convert(&flv);

        // The configuration as an in-band encoder gives it: the same parameter sets as the
        // publisher's record, and a record that parses back to it.
        let avc = AvcConfig::from_annexb(&input.video[0].data).expect("SPS and PPS in-band");
        assert_eq!((&avc.sps, &avc.pps), (&input.avc.sps, &input.avc.pps));
        let record = avc.record().expect("record");
        assert_eq!(AvcConfig::parse(&record).expect("parses"), avc);
        assert_eq!(
            record.len(),
            6 + (2 + avc.sps[0].len()) + 1 + (2 + avc.pps[0].len()) + 4,
            "High profile: chroma format and bit depths follow the PPS"
        );

        let mut video = Vec::new();
        for (i, v) in input.video.iter().enumerate() {
            let next = input
                .video
                .get(i + 1)
                .map_or(v.dts_90k + 3000, |n| n.dts_90k);
            let mut data = Vec::new();
            let idr = annexb_to_avcc(&v.data, &mut data).expect("AVCC");
            assert_eq!(idr, v.keyframe);
            video.push(Sample {
                decode_time: v.dts_90k,
                duration: u32::try_from(next - v.dts_90k).expect("small"),
                composition_offset: i32::try_from(
                    i64::try_from(v.pts_90k).expect("fits")
                        - i64::try_from(v.dts_90k).expect("fits"),
                )
                .expect("small"),
                sync: v.keyframe,
                data: Bytes::from(data),
            });
        }
        let rate = u64::from(input.aac.sample_rate);
        let audio: Vec<Sample> = input
            .audio
            .iter()
            .map(|a| Sample {
                decode_time: (a.pts_90k - BASE_90K as u64) * rate / 90_000,
                duration: u32::from(input.aac.samples_per_frame),
                composition_offset: 0,
                sync: true,
                data: a.data.slice(aac::ADTS_HEADER_LEN..),
            })
            .collect();
        let muxer = Fmp4Muxer::new(
            VideoTrack {
                config: VideoConfig::Avc(Bytes::from(record)),
                width: 320,
                height: 240,
            },
            Some(AudioTrack {
                audio_specific_config: Bytes::copy_from_slice(&[
                    (input.aac.object_type << 3) | (input.aac.sampling_frequency_index >> 1),
                    ((input.aac.sampling_frequency_index & 1) << 7)
                        | (input.aac.channel_config << 3),
                ]),
                sample_rate: input.aac.sample_rate,
                channels: u16::from(input.aac.channel_config),
            }),
        );
        let init = muxer.init_segment().expect("init segment");

        // A first segment in one fragment, a second in parts of ten frames, as LL-HLS
        // would cut it.
        let cut = video
            .iter()
            .skip(1)
            .position(|v| v.sync)
            .expect("a second keyframe")
            + 1;
        let audio_at =
            |t: u64| audio.partition_point(|a| a.decode_time * 90_000 / rate < t - BASE_90K as u64);
        let audio_cut = audio_at(video[cut].decode_time);
        let mut fragments = vec![muxer
            .fragment(1, &video[..cut], &audio[..audio_cut])
            .expect("fragment")];
        let mut from = (cut, audio_cut);
        let mut sequence = 2;
        while from.0 < video.len() {
            let to = (from.0 + 10).min(video.len());
            let audio_to = if to == video.len() {
                audio.len()
            } else {
                audio_at(video[to].decode_time)
            };
            fragments.push(
                muxer
                    .fragment(sequence, &video[from.0..to], &audio[from.1..audio_to])
                    .expect("part"),
            );
            from = (to, audio_to);
            sequence += 1;
        }

        let whole = dir.path().join("whole.mp4");
        let mut bytes = init.to_vec();
        fragments.iter().for_each(|f| bytes.extend_from_slice(f));
        std::fs::write(&whole, &bytes).expect("write");
        let probed = probe(&whole);
        let streams = probed["streams"].as_array().expect("streams");
        let stream = |kind: &str| {
            streams
                .iter()
                .find(|s| s["codec_type"] == kind)
                .unwrap_or_else(|| panic!("no {kind} stream in {streams:?}"))
        };
        assert_eq!(stream("video")["codec_name"], "h264");
        assert_eq!(
            (
                stream("video")["width"].as_u64(),
                stream("video")["height"].as_u64()
            ),
            (Some(320), Some(240))
        );
        assert_eq!(stream("audio")["codec_name"], "aac");
        assert_eq!(
            frames(&probed, "video").len(),
            video.len(),
            "every video frame decodes"
        );
        assert_eq!(
            frames(&probed, "audio").len(),
            audio.len(),
            "every AAC frame decodes"
        );

        // The second segment plays from the init segment alone.
        let alone = dir.path().join("second.mp4");
        let mut bytes = init.to_vec();
        fragments[1..]
            .iter()
            .for_each(|f| bytes.extend_from_slice(f));
        std::fs::write(&alone, &bytes).expect("write");
        let probed = probe(&alone);
        let video_frames = frames(&probed, "video");
        assert_eq!(video_frames.len(), video.len() - cut);
        assert_eq!(video_frames[0]["key_frame"], 1);
        assert_eq!(frames(&probed, "audio").len(), audio.len() - audio_cut);
    }
}
