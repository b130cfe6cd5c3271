//! Containers and codecs, pure: bytes in, bytes or values out. No sockets, no clocks, no
//! ffmpeg; the only I/O is [`FlvReader`] pulling from a [`std::io::Read`].
//!
//! The path of a publish through this module: an RTMP message body is parsed by
//! [`flv`] into a [`VideoTag`] or [`AudioTag`]; their configuration records become an
//! [`AvcConfig`] ([`h264`]) and an [`AacConfig`] ([`aac`]); frames are converted to Annex B
//! ([`avcc_to_annexb`]) and ADTS ([`AacConfig::adts_header`]); [`ts::TsMuxer`] turns
//! a segment's worth of them into MPEG-TS.
//!
//! - [`flv`]: RTMP audio/video message bodies (= FLV tag bodies) and FLV files.
//! - [`h264`]: AVCDecoderConfigurationRecord, AVCC → Annex B, SPS picture size, codec
//!   strings.
//! - [`aac`]: AudioSpecificConfig, ADTS headers, frame durations, codec strings.
//! - [`ts`]: the MPEG-TS muxer for HLS segments.
//! - [`error`]: [`ContainerError`], the module's one error enum.
//!
//! Everything here parses input a publisher controls, so nothing here may panic on any
//! input; each parser has a property test feeding it random bytes.

pub mod aac;
mod bits;
pub mod error;
pub mod flv;
pub mod h264;
pub mod ts;

pub use aac::AacConfig;
pub use error::ContainerError;
pub use flv::{parse_audio_tag, parse_video_tag, AudioTag, FlvReader, FlvTag, TagKind, VideoTag};
pub use h264::{annexb_nals, avcc_to_annexb, codec_string_from_annexb, sps_dimensions, AvcConfig};
pub use ts::{TsAudio, TsMuxer, TsVideo};

#[cfg(test)]
mod tests {
    //! The whole layer against real tools: ffmpeg writes an FLV, this module turns it into
    //! TS, ffprobe reads the TS back.

    use std::fs::File;
    use std::io::BufReader;
    use std::path::Path;
    use std::process::Command;

    use bytes::Bytes;

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
                    VideoTag::AvcSequenceHeader(record) => {
                        avc = Some(AvcConfig::parse(&record).expect("valid record"));
                    }
                    VideoTag::AvcNalus {
                        keyframe,
                        composition_time_ms,
                        data,
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
                    VideoTag::AvcEndOfSequence => {}
                    other => panic!("unexpected video tag {other:?}"),
                },
                TagKind::Audio => match parse_audio_tag(&tag.body).expect("valid audio tag") {
                    AudioTag::AacSequenceHeader(asc) => {
                        aac = Some(AacConfig::parse(&asc).expect("valid ASC"));
                    }
                    AudioTag::AacRaw(raw) => {
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

    fn run(cmd: &mut Command) -> std::process::Output {
        let output = cmd.output().expect("the tool is installed");
        assert!(
            output.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// ffprobe's view of a TS file; fails on anything ffprobe reports as an error.
    fn probe(path: &Path) -> serde_json::Value {
        let output = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_streams",
                "-show_frames",
                "-of",
                "json",
            ])
            .arg(path));
        assert!(
            output.stderr.is_empty(),
            "ffprobe reported errors for {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("ffprobe writes JSON")
    }

    fn frames<'a>(probe: &'a serde_json::Value, media_type: &str) -> Vec<&'a serde_json::Value> {
        probe["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .filter(|f| f["media_type"] == media_type)
            .collect()
    }

    #[test]
    fn ffmpeg_flv_to_ts_reads_back_in_ffprobe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flv = dir.path().join("in.flv");
        run(Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=1000"])
            .args([
                "-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "30",
            ])
            .args(["-c:a", "aac", "-f", "flv"])
            .arg(&flv));

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
}
