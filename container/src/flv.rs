//! FLV tag bodies and FLV files.
//!
//! An RTMP audio or video message body is byte for byte an FLV tag body, so the same two
//! parsers serve the RTMP session (messages from the network) and [`FlvReader`] (files, used
//! by tests and by tools that replay a recording). Parsers return slices of the body they
//! were given ([`Bytes::slice`]), so a frame travels from the socket buffer to the muxer
//! without being copied.
//!
//! This file reads the legacy headers (H.264 with codec id 7, and codec id 12, the HEVC
//! that CDNs took before Enhanced RTMP existed; AAC and MP3 audio) and hands the extended
//! ones to [`super::ertmp`] (HEVC, AV1, VP9 and H.264 by FourCC; AAC, Opus, AC-3, E-AC-3
//! and MP3 by FourCC; multitrack). Both say the same thing in the same terms: a
//! [`VideoTag`] or [`AudioTag`] whose codec is named by its FourCC.

use std::io::{ErrorKind, Read};

use bytes::Bytes;

use super::ertmp::{self, si24};
pub use super::ertmp::{AudioFourCc, AudioTag, VideoFourCc, VideoTag};
use super::ContainerError;

/// FLV `CodecID` of H.264/AVC.
const CODEC_ID_AVC: u8 = 7;
/// FLV `CodecID` 12: HEVC as Chinese CDNs carried it before E-RTMP (the AVC layout with an
/// HEVCDecoderConfigurationRecord).
const CODEC_ID_HEVC_LEGACY: u8 = 12;
/// FLV `SoundFormat` of MP3, and of MP3 at 8 kHz.
const SOUND_FORMAT_MP3: u8 = 2;
const SOUND_FORMAT_MP3_8K: u8 = 14;
/// FLV `SoundFormat` of AAC.
const SOUND_FORMAT_AAC: u8 = 10;
/// FLV `SoundFormat` value that E-RTMP v2 reuses as "an audio FourCC follows".
const SOUND_FORMAT_EX_HEADER: u8 = 9;
/// FLV `FrameType` of a video info/command frame, which carries no picture.
const FRAME_TYPE_COMMAND: u8 = 5;

/// Parses the body of an RTMP video message (= FLV video tag body).
///
/// The returned payloads are zero-copy slices of `body`.
pub fn parse_video_tag(body: &Bytes) -> Result<VideoTag, ContainerError> {
    const WHAT: &str = "FLV video tag";
    let Some(&first) = body.first() else {
        return Err(ContainerError::truncated(WHAT, 1, 0));
    };
    if first & 0x80 != 0 {
        return ertmp::parse_video(body);
    }
    let frame_type = first >> 4;
    let codec = match first & 0x0F {
        CODEC_ID_AVC => VideoFourCc::Avc,
        CODEC_ID_HEVC_LEGACY => VideoFourCc::Hevc,
        other => {
            return Ok(VideoTag::Unsupported {
                codec: video_codec_name(other),
            })
        }
    };
    if frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoTag::Info);
    }
    // Legacy AVC header: AVCPacketType (1 byte), CompositionTime (SI24).
    if body.len() < 5 {
        return Err(ContainerError::truncated(WHAT, 5, body.len()));
    }
    let composition_time_ms = si24(body[2], body[3], body[4]);
    match body[1] {
        0 => Ok(VideoTag::SequenceStart {
            codec,
            config: body.slice(5..),
        }),
        1 if body.len() == 5 => Ok(VideoTag::Info),
        1 => Ok(VideoTag::CodedFrames {
            codec,
            keyframe: frame_type == 1,
            composition_time_ms,
            data: body.slice(5..),
        }),
        2 => Ok(VideoTag::SequenceEnd),
        other => Err(ContainerError::malformed(
            WHAT,
            format!("AVC packet type {other}"),
        )),
    }
}

/// Names a legacy FLV video codec id for an error message.
fn video_codec_name(codec_id: u8) -> String {
    match codec_id {
        2 => "Sorenson H.263".to_owned(),
        3 => "Screen Video".to_owned(),
        4 => "On2 VP6".to_owned(),
        5 => "On2 VP6 with alpha".to_owned(),
        6 => "Screen Video 2".to_owned(),
        other => format!("FLV video codec id {other}"),
    }
}

/// Parses the body of an RTMP audio message (= FLV audio tag body).
///
/// The returned payloads are zero-copy slices of `body`.
pub fn parse_audio_tag(body: &Bytes) -> Result<AudioTag, ContainerError> {
    const WHAT: &str = "FLV audio tag";
    let Some(&first) = body.first() else {
        // RTMP's undocumented "silence" message: an audio message without a header.
        return Ok(AudioTag::Info);
    };
    let sound_format = first >> 4;
    match sound_format {
        SOUND_FORMAT_EX_HEADER => ertmp::parse_audio(body),
        SOUND_FORMAT_AAC => {
            if body.len() < 2 {
                return Err(ContainerError::truncated(WHAT, 2, body.len()));
            }
            let codec = AudioFourCc::Aac;
            match body[1] {
                0 => Ok(AudioTag::SequenceStart {
                    codec,
                    config: body.slice(2..),
                }),
                1 if body.len() == 2 => Ok(AudioTag::Info),
                1 => Ok(AudioTag::CodedFrames {
                    codec,
                    data: body.slice(2..),
                }),
                other => Err(ContainerError::malformed(
                    WHAT,
                    format!("AAC packet type {other}"),
                )),
            }
        }
        SOUND_FORMAT_MP3 | SOUND_FORMAT_MP3_8K if body.len() == 1 => Ok(AudioTag::Info),
        SOUND_FORMAT_MP3 | SOUND_FORMAT_MP3_8K => Ok(AudioTag::CodedFrames {
            codec: AudioFourCc::Mp3,
            data: body.slice(1..),
        }),
        _ => {
            let sample_rate = match (sound_format, (first >> 2) & 0x03) {
                // Nellymoser 8 kHz and 16 kHz ignore the rate bits.
                (5, _) => 8_000,
                (4, _) => 16_000,
                (_, 0) => 5_512,
                (_, 1) => 11_025,
                (_, 2) => 22_050,
                _ => 44_100,
            };
            Ok(AudioTag::Other {
                sound_format,
                sample_rate,
                stereo: first & 0x01 != 0,
                sixteen_bit: first & 0x02 != 0,
                data: body.slice(1..),
            })
        }
    }
}

/// What an FLV tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// An audio tag; parse its body with [`parse_audio_tag`].
    Audio,
    /// A video tag; parse its body with [`parse_video_tag`].
    Video,
    /// An AMF0 script data tag (usually `onMetaData`), passed through unparsed.
    Script,
}

/// One tag of an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Which parser the body belongs to.
    pub kind: TagKind,
    /// Decode timestamp in milliseconds, with the extended (upper) byte applied, so files
    /// longer than 4.6 hours keep counting instead of wrapping.
    pub timestamp_ms: u32,
    /// The tag body, equal to the body of the RTMP message it would have been sent as.
    pub body: Bytes,
}

/// Reads an FLV file tag by tag.
///
/// Wrap unbuffered readers (files) in a [`std::io::BufReader`]: the reader issues one small
/// read per header field.
#[derive(Debug)]
pub struct FlvReader<R: Read> {
    /// The underlying byte source, positioned at the next `PreviousTagSize` field.
    inner: R,
    /// Whether the header announced audio tags (informational; we do not enforce it).
    has_audio: bool,
    /// Whether the header announced video tags.
    has_video: bool,
}

/// Size of the FLV file header we understand (`DataOffset` may announce a longer one).
const FLV_HEADER_LEN: u32 = 9;
/// Size of a tag header: type, size (24), timestamp (24 + 8), stream id (24).
const TAG_HEADER_LEN: usize = 11;

impl<R: Read> FlvReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut inner: R) -> Result<Self, ContainerError> {
        const WHAT: &str = "FLV header";
        let mut header = [0u8; FLV_HEADER_LEN as usize];
        let got = read_full(&mut inner, &mut header)?;
        if got < header.len() {
            return Err(ContainerError::truncated(WHAT, header.len(), got));
        }
        if &header[..3] != b"FLV" {
            return Err(ContainerError::malformed(
                WHAT,
                format!("signature \"{}\", not \"FLV\"", header[..3].escape_ascii()),
            ));
        }
        if header[3] != 1 {
            return Err(ContainerError::Unsupported {
                what: WHAT,
                detail: format!("version {}", header[3]),
            });
        }
        let data_offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        if data_offset < FLV_HEADER_LEN {
            return Err(ContainerError::malformed(
                WHAT,
                format!("data offset {data_offset} is shorter than the header"),
            ));
        }
        // A longer header is allowed by the spec (for future versions); skip what we do not
        // understand without buffering it.
        let extra = u64::from(data_offset - FLV_HEADER_LEN);
        let skipped = std::io::copy(&mut (&mut inner).take(extra), &mut std::io::sink())?;
        if skipped < extra {
            return Err(ContainerError::truncated(
                WHAT,
                data_offset as usize,
                FLV_HEADER_LEN as usize + skipped as usize,
            ));
        }
        Ok(Self {
            inner,
            has_audio: header[4] & 0x04 != 0,
            has_video: header[4] & 0x01 != 0,
        })
    }

    /// Whether the file header announces audio tags.
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// Whether the file header announces video tags.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// Returns the next audio, video or script tag, or `None` at the end of the file.
    ///
    /// Tags of reserved types are skipped. `PreviousTagSize` fields are not checked
    /// (muxers are known to get them wrong, and the tag header alone delimits the tag); a
    /// file that ends right after a tag body, without its last `PreviousTagSize`, ends
    /// cleanly, so a recording whose writer died between two writes can still be read.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, ContainerError> {
        const WHAT: &str = "FLV tag header";
        loop {
            // PreviousTagSize of the tag before, then the header of this one.
            let mut buf = [0u8; 4 + TAG_HEADER_LEN];
            let got = read_full(&mut self.inner, &mut buf)?;
            if got <= 4 {
                // Clean end of file: only (part of) the trailing PreviousTagSize was there.
                return Ok(None);
            }
            if got < buf.len() {
                return Err(ContainerError::truncated(WHAT, TAG_HEADER_LEN, got - 4));
            }
            let h = &buf[4..];
            if h[0] & 0x20 != 0 {
                return Err(ContainerError::Unsupported {
                    what: WHAT,
                    detail: "encrypted tag (Filter bit set)".to_owned(),
                });
            }
            let kind = match h[0] & 0x1F {
                8 => Some(TagKind::Audio),
                9 => Some(TagKind::Video),
                18 => Some(TagKind::Script),
                _ => None,
            };
            let data_size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
            let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);

            // `take` + `read_to_end` grows the buffer as bytes arrive instead of trusting
            // the size field with a 16 MiB allocation up front.
            let mut body = Vec::new();
            (&mut self.inner)
                .take(u64::from(data_size))
                .read_to_end(&mut body)?;
            if body.len() < data_size as usize {
                return Err(ContainerError::truncated(
                    "FLV tag body",
                    data_size as usize,
                    body.len(),
                ));
            }
            if let Some(kind) = kind {
                return Ok(Some(FlvTag {
                    kind,
                    timestamp_ms,
                    body: Bytes::from(body),
                }));
            }
        }
    }
}

/// Fills `buf` as far as the reader allows, returning how many bytes were read: fewer than
/// `buf.len()` only at end of file.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, ContainerError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn video(bytes: &[u8]) -> Result<VideoTag, ContainerError> {
        parse_video_tag(&Bytes::copy_from_slice(bytes))
    }

    fn audio(bytes: &[u8]) -> Result<AudioTag, ContainerError> {
        parse_audio_tag(&Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn avc_sequence_header_and_frames() {
        let avc = VideoFourCc::Avc;
        assert_eq!(
            video(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]).expect("valid"),
            VideoTag::SequenceStart {
                codec: avc,
                config: Bytes::from_static(&[1, 0x64, 0, 0x1f])
            }
        );
        assert_eq!(
            video(&[0x17, 1, 0, 0, 0x42, 0, 0, 0, 1, 0x65]).expect("valid"),
            VideoTag::CodedFrames {
                codec: avc,
                keyframe: true,
                composition_time_ms: 0x42,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            }
        );
        assert_eq!(
            video(&[0x27, 1, 0xFF, 0xFF, 0xDF, 9]).expect("valid"),
            VideoTag::CodedFrames {
                codec: avc,
                keyframe: false,
                composition_time_ms: -33,
                data: Bytes::from_static(&[9]),
            }
        );
        assert_eq!(
            video(&[0x17, 2, 0, 0, 0]).expect("valid"),
            VideoTag::SequenceEnd
        );
        // An empty frame carries nothing.
        assert_eq!(video(&[0x27, 1, 0, 0, 0]).expect("valid"), VideoTag::Info);
    }

    #[test]
    fn legacy_hevc_codec_id_12_is_taken() {
        assert_eq!(
            video(&[0x1C, 0, 0, 0, 0, 1, 1]).expect("valid"),
            VideoTag::SequenceStart {
                codec: VideoFourCc::Hevc,
                config: Bytes::from_static(&[1, 1])
            }
        );
    }

    #[test]
    fn slices_share_the_body() {
        let body = Bytes::from(vec![0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]);
        let VideoTag::CodedFrames { data, .. } = parse_video_tag(&body).expect("valid") else {
            panic!("not a frame");
        };
        assert_eq!(data.as_ptr(), body[5..].as_ptr());
    }

    #[test]
    fn other_video_codecs_are_named() {
        assert_eq!(
            video(&[0x12, 0, 0]).expect("valid"),
            VideoTag::Unsupported {
                codec: "Sorenson H.263".to_owned()
            }
        );
        // E-RTMP: IsExHeader | key frame | CodedFrames, FourCC vvc1.
        assert_eq!(
            video(b"\x91vvc1\0\0\0").expect("valid"),
            VideoTag::Unsupported {
                codec: "vvc1".to_owned()
            }
        );
    }

    #[test]
    fn enhanced_tags_go_to_the_extended_parser() {
        assert_eq!(
            video(b"\x90avc1\x01\x64").expect("valid"),
            VideoTag::SequenceStart {
                codec: VideoFourCc::Avc,
                config: Bytes::from_static(&[1, 0x64])
            }
        );
        assert_eq!(
            video(b"\x91avc1\xff\xff\xfe\0\0\0\x01\x65").expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Avc,
                keyframe: true,
                composition_time_ms: -2,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            }
        );
        assert_eq!(video(b"\x92avc1").expect("valid"), VideoTag::SequenceEnd);
        assert_eq!(video(b"\x94avc1\x02").expect("valid"), VideoTag::Info);
        assert!(matches!(
            video(b"\x90hvc1\x01"),
            Ok(VideoTag::SequenceStart {
                codec: VideoFourCc::Hevc,
                ..
            })
        ));
    }

    #[test]
    fn command_frames_are_info() {
        assert_eq!(video(&[0x57, 0]).expect("valid"), VideoTag::Info);
        assert_eq!(video(&[0xD0, 1]).expect("valid"), VideoTag::Info);
    }

    #[test]
    fn short_video_tags_are_errors() {
        assert!(matches!(video(&[]), Err(ContainerError::Truncated { .. })));
        assert!(matches!(
            video(&[0x17, 1, 0]),
            Err(ContainerError::Truncated { .. })
        ));
        assert!(matches!(
            video(b"\x91avc1\0"),
            Err(ContainerError::Truncated { .. })
        ));
        assert!(matches!(
            video(&[0x17, 7, 0, 0, 0]),
            Err(ContainerError::Malformed { .. })
        ));
    }

    #[test]
    fn aac_tags() {
        let aac = AudioFourCc::Aac;
        assert_eq!(
            audio(&[0xAF, 0, 0x12, 0x10]).expect("valid"),
            AudioTag::SequenceStart {
                codec: aac,
                config: Bytes::from_static(&[0x12, 0x10])
            }
        );
        assert_eq!(
            audio(&[0xAF, 1, 0x21, 0x1b]).expect("valid"),
            AudioTag::CodedFrames {
                codec: aac,
                data: Bytes::from_static(&[0x21, 0x1b])
            }
        );
        assert_eq!(
            audio(b"\x90mp4a\x12\x10").expect("valid"),
            AudioTag::SequenceStart {
                codec: aac,
                config: Bytes::from_static(&[0x12, 0x10])
            }
        );
        assert!(matches!(
            audio(&[0xAF]),
            Err(ContainerError::Truncated { .. })
        ));
        // RTMP's silence message.
        assert_eq!(audio(&[]).expect("valid"), AudioTag::Info);
    }

    #[test]
    fn mp3_and_other_audio_formats() {
        // MP3, 44 kHz, 16 bit, stereo.
        assert_eq!(
            audio(&[0x2F, 0xFF, 0xFB]).expect("valid"),
            AudioTag::CodedFrames {
                codec: AudioFourCc::Mp3,
                data: Bytes::from_static(&[0xFF, 0xFB]),
            }
        );
        // Nellymoser 8 kHz mono, 16 bit: the rate bits say 5.5 kHz but the format wins.
        assert_eq!(
            audio(&[0x52]).expect("valid"),
            AudioTag::Other {
                sound_format: 5,
                sample_rate: 8_000,
                stereo: false,
                sixteen_bit: true,
                data: Bytes::new(),
            }
        );
    }

    /// Builds an FLV file in memory: header, then each tag with its PreviousTagSize.
    fn flv_file(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\0\0\0\x09".to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        for &(tag_type, ts, body) in tags {
            let size = u32::try_from(body.len()).expect("small body");
            out.push(tag_type);
            out.extend_from_slice(&size.to_be_bytes()[1..]);
            out.extend_from_slice(&ts.to_be_bytes()[1..]);
            out.push(ts.to_be_bytes()[0]);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(body);
            out.extend_from_slice(&(size + 11).to_be_bytes());
        }
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<FlvTag>, ContainerError> {
        let mut reader = FlvReader::new(bytes)?;
        let mut tags = Vec::new();
        while let Some(tag) = reader.next_tag()? {
            tags.push(tag);
        }
        Ok(tags)
    }

    #[test]
    fn reader_reads_tags_with_extended_timestamps() {
        let file = flv_file(&[
            (18, 0, b"\x02\x00\x0aonMetaData"),
            (9, 0x0100_0021, &[0x17, 1, 0, 0, 0]),
            (7, 5, b"reserved type is skipped"),
            (8, 0xFF12_3456, &[0xAF, 1, 0x21]),
        ]);
        let reader = FlvReader::new(&file[..]).expect("header");
        assert!(reader.has_audio() && reader.has_video());
        let tags = read_all(&file).expect("valid file");
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].kind, TagKind::Script);
        assert_eq!(tags[1].kind, TagKind::Video);
        assert_eq!(tags[1].timestamp_ms, 0x0100_0021);
        assert_eq!(tags[2].kind, TagKind::Audio);
        assert_eq!(tags[2].timestamp_ms, 0xFF12_3456);
        assert_eq!(&tags[2].body[..], &[0xAF, 1, 0x21]);
    }

    #[test]
    fn reader_tolerates_a_missing_last_tag_size_but_not_a_cut_body() {
        let file = flv_file(&[(9, 0, &[0x17, 1, 0, 0, 0])]);
        assert_eq!(read_all(&file[..file.len() - 4]).expect("ok").len(), 1);
        assert_eq!(read_all(&file[..file.len() - 2]).expect("ok").len(), 1);
        assert!(matches!(
            read_all(&file[..file.len() - 5]),
            Err(ContainerError::Truncated { .. })
        ));
        assert!(matches!(
            read_all(&file[..20]),
            Err(ContainerError::Truncated { .. })
        ));
    }

    #[test]
    fn reader_rejects_other_files() {
        assert!(matches!(
            FlvReader::new(&b"GIF89a\0\0\0"[..]),
            Err(ContainerError::Malformed { .. })
        ));
        assert!(matches!(
            FlvReader::new(&b"FLV"[..]),
            Err(ContainerError::Truncated { .. })
        ));
        assert!(matches!(
            FlvReader::new(&b"FLV\x01\x05\0\0\0\x08"[..]),
            Err(ContainerError::Malformed { .. })
        ));
        // A longer header announced but missing.
        assert!(matches!(
            FlvReader::new(&b"FLV\x01\x05\0\0\0\x20\0\0"[..]),
            Err(ContainerError::Truncated { .. })
        ));
        // Encrypted tags.
        let mut file = flv_file(&[(9, 0, &[0x17])]);
        file[13] |= 0x20;
        assert!(matches!(
            read_all(&file),
            Err(ContainerError::Unsupported { .. })
        ));
    }

    proptest! {
        #[test]
        fn tag_parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let body = Bytes::from(body);
            let _ = parse_video_tag(&body);
            let _ = parse_audio_tag(&body);
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read_all(&bytes);
            // Random bytes behind a valid header reach the tag loop.
            let mut file = b"FLV\x01\x05\0\0\0\x09".to_vec();
            file.extend_from_slice(&bytes);
            let _ = read_all(&file);
        }

        #[test]
        fn reader_round_trips(tags in proptest::collection::vec(
            (prop_oneof![Just(8u8), Just(9u8), Just(18u8)], any::<u32>(),
             proptest::collection::vec(any::<u8>(), 0..300)),
            0..8,
        )) {
            let spec: Vec<(u8, u32, &[u8])> =
                tags.iter().map(|(t, ts, b)| (*t, *ts, &b[..])).collect();
            let read = read_all(&flv_file(&spec)).expect("valid file");
            prop_assert_eq!(read.len(), tags.len());
            for (got, (t, ts, b)) in read.iter().zip(&tags) {
                let kind = match t { 8 => TagKind::Audio, 9 => TagKind::Video, _ => TagKind::Script };
                prop_assert_eq!(got.kind, kind);
                prop_assert_eq!(got.timestamp_ms, *ts);
                prop_assert_eq!(&got.body[..], &b[..]);
            }
        }
    }
}
