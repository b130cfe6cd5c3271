//! Enhanced RTMP (E-RTMP, the Veovera specification, v1 and v2): the extended video and
//! audio tag headers that carry a FourCC instead of a legacy codec id.
//!
//! [`super::flv`] reads the legacy headers and hands a tag here when its `IsExHeader` bit
//! (video) or its `SoundFormat = 9` (audio) says the extended form follows. What is read:
//!
//! - the packet types `SequenceStart`, `CodedFrames`, `SequenceEnd`, `CodedFramesX`,
//!   `Metadata` (video) and `MultichannelConfig` (audio); `MPEG2TSSequenceStart` is
//!   skipped (the configuration record of `SequenceStart` says the same);
//! - `ModEx` prefixes, skipped (the nanosecond offset they carry is below the millisecond
//!   clock of the pipeline), at most [`MAX_MOD_EX`] of them;
//! - multitrack messages (v2, as OBS's multitrack output sends them), one track or many,
//!   one codec or many: the pipeline takes the default track, trackId 0 (the spec
//!   recommends it for "the representation most receivers select"), and every other track
//!   of the message is stepped over, at most [`MAX_TRACKS`] per message;
//! - the FourCCs `avc1`, `hvc1`, `av01`, `vp09` ([`VideoFourCc`]) and `mp4a`, `Opus`,
//!   `ac-3`, `ec-3`, `.mp3` ([`AudioFourCc`]); any other is named in
//!   [`VideoTag::Unsupported`] / [`AudioTag::Unsupported`] so the publish can be refused
//!   with a message a human can act on.
//!
//! Every length is checked against what is left of the message before anything is sliced;
//! payloads are zero-copy slices of the message body.

use bytes::Bytes;

use super::ContainerError;

/// The body of one RTMP video message / FLV video tag, as far as the ingest needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// The decoder configuration of what follows (AVC packet type 0, E-RTMP
    /// `SequenceStart`), in the codec's own record: AVCDecoderConfigurationRecord,
    /// HEVCDecoderConfigurationRecord, AV1CodecConfigurationRecord or
    /// VPCodecConfigurationRecord. Needed before any frame can be decoded.
    SequenceStart {
        /// Whose record it is.
        codec: VideoFourCc,
        /// The record.
        config: Bytes,
    },
    /// One access unit (AVC packet type 1, E-RTMP `CodedFrames` / `CodedFramesX`).
    CodedFrames {
        /// Its codec.
        codec: VideoFourCc,
        /// FLV frame type 1 ("key frame"). Publishers set it on pictures a decoder can
        /// start at; segment boundaries are cut here.
        keyframe: bool,
        /// PTS minus DTS in milliseconds (signed: some encoders emit negative offsets);
        /// 0 for AV1 and VP9, which have none.
        composition_time_ms: i32,
        /// The access unit: length-prefixed NAL units (AVC, HEVC), OBUs (AV1), a frame
        /// (VP9).
        data: Bytes,
    },
    /// The publisher's encoder has finished; no more frames follow until a new sequence
    /// start.
    SequenceEnd,
    /// A tag that carries nothing for the pipeline and changes no decoder state: a video
    /// info/command frame (frame type 5), an E-RTMP metadata packet, another track of a
    /// multitrack stream. Callers skip it; it is a variant rather than an error so an
    /// encoder's housekeeping cannot end a publish.
    Info,
    /// A codec we do not take (a legacy codec id other than 7 and 12, or a FourCC such as
    /// `vvc1`).
    Unsupported {
        /// Human-readable codec name or FourCC, for the error sent back to the publisher.
        codec: String,
    },
}

/// The body of one RTMP audio message / FLV audio tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// The decoder configuration of what follows (AAC packet type 0, E-RTMP
    /// `SequenceStart`): an AudioSpecificConfig (AAC; the rate and channel bits of the
    /// legacy FLV header are meaningless for AAC), an Opus ID header (possibly empty), or
    /// nothing (AC-3, E-AC-3).
    SequenceStart {
        /// Whose configuration it is.
        codec: AudioFourCc,
        /// The configuration.
        config: Bytes,
    },
    /// Coded audio (AAC packet type 1, MP3 tags, E-RTMP `CodedFrames`): one raw AAC frame
    /// (no ADTS header), Opus packets, AC-3 / E-AC-3 sync frames, MP3 frames.
    CodedFrames {
        /// Its codec.
        codec: AudioFourCc,
        /// The frames.
        data: Bytes,
    },
    /// A tag that carries no audio for the pipeline: an empty message (RTMP's "silence"),
    /// an E-RTMP sequence end or channel configuration, another track of a multitrack
    /// stream.
    Info,
    /// A legacy FLV audio format other than AAC and MP3 (Speex, PCM, Nellymoser, ...),
    /// with the header fields decoded so a caller can say what it got.
    Other {
        /// FLV `SoundFormat` (11 = Speex, ...).
        sound_format: u8,
        /// Sample rate in Hz, as the header states it (with the fixed rates of the
        /// Nellymoser 8/16 kHz formats applied).
        sample_rate: u32,
        /// `SoundType` bit.
        stereo: bool,
        /// `SoundSize` bit.
        sixteen_bit: bool,
        /// Everything after the one-byte header.
        data: Bytes,
    },
    /// An E-RTMP audio FourCC we do not take (`fLaC`, ...).
    Unsupported {
        /// Human-readable codec name or FourCC, for the error sent back to the publisher.
        codec: String,
    },
}

/// What follows a packet type: the media's packet type, the multitrack type, the FourCC
/// ([`Reader::track_header`]).
type TrackHeader = (u8, Option<Multitrack>, Option<[u8; 4]>);

/// Most `ModEx` prefixes one message may carry before its packet type. The spec sets no
/// bound; one is all that is defined today (the nanosecond timestamp offset).
pub const MAX_MOD_EX: usize = 8;
/// Most tracks one multitrack message may carry. OBS sends up to five video tracks.
pub const MAX_TRACKS: usize = 16;
/// The track the pipeline takes from a multitrack stream: the spec's default track.
pub const DEFAULT_TRACK: u8 = 0;

/// A video codec of the extended header, by the FourCC that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoFourCc {
    /// `avc1`: H.264; configuration an AVCDecoderConfigurationRecord, frames AVCC.
    Avc,
    /// `hvc1`: HEVC; configuration an HEVCDecoderConfigurationRecord, frames
    /// length-prefixed NAL units.
    Hevc,
    /// `av01`: AV1; configuration an AV1CodecConfigurationRecord, frames low-overhead OBUs.
    Av1,
    /// `vp09`: VP9; configuration a VPCodecConfigurationRecord, frames VP9 frames.
    Vp9,
}

impl VideoFourCc {
    /// The codec of a FourCC, if it is one the pipeline takes.
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Self> {
        match &fourcc {
            b"avc1" => Some(Self::Avc),
            b"hvc1" => Some(Self::Hevc),
            b"av01" => Some(Self::Av1),
            b"vp09" => Some(Self::Vp9),
            _ => None,
        }
    }

    /// The FourCC as it travels.
    pub fn fourcc(self) -> &'static str {
        match self {
            Self::Avc => "avc1",
            Self::Hevc => "hvc1",
            Self::Av1 => "av01",
            Self::Vp9 => "vp09",
        }
    }

    /// Whether `CodedFrames` starts with a composition time offset (SI24): only the codecs
    /// with B-frames reordered by the container (AVC, HEVC) have one.
    fn has_composition_time(self) -> bool {
        matches!(self, Self::Avc | Self::Hevc)
    }
}

/// An audio codec of the extended header, by the FourCC that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFourCc {
    /// `mp4a`: AAC; configuration an AudioSpecificConfig, frames raw.
    Aac,
    /// `Opus`: configuration an Opus ID header (RFC 7845 §5.1, may be empty), frames Opus
    /// packets.
    Opus,
    /// `ac-3`: AC-3 sync frames; no configuration.
    Ac3,
    /// `ec-3`: E-AC-3 sync frames; no configuration.
    Eac3,
    /// `.mp3`: MPEG-1/2 Layer III frames; no configuration.
    Mp3,
}

impl AudioFourCc {
    /// The codec of a FourCC, if it is one the pipeline takes.
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Self> {
        match &fourcc {
            b"mp4a" => Some(Self::Aac),
            b"Opus" => Some(Self::Opus),
            b"ac-3" => Some(Self::Ac3),
            b"ec-3" => Some(Self::Eac3),
            b".mp3" => Some(Self::Mp3),
            _ => None,
        }
    }

    /// The FourCC as it travels.
    pub fn fourcc(self) -> &'static str {
        match self {
            Self::Aac => "mp4a",
            Self::Opus => "Opus",
            Self::Ac3 => "ac-3",
            Self::Eac3 => "ec-3",
            Self::Mp3 => ".mp3",
        }
    }
}

/// Every FourCC the ingest takes, video then audio: what the `connect` answer announces.
pub const FOURCCS: [&str; 9] = [
    "avc1", "hvc1", "av01", "vp09", "mp4a", "Opus", "ac-3", "ec-3", ".mp3",
];

// VideoPacketType (E-RTMP v2).
const VIDEO_SEQUENCE_START: u8 = 0;
const VIDEO_CODED_FRAMES: u8 = 1;
const VIDEO_SEQUENCE_END: u8 = 2;
const VIDEO_CODED_FRAMES_X: u8 = 3;
const VIDEO_METADATA: u8 = 4;
const VIDEO_MPEG2TS_SEQUENCE_START: u8 = 5;
const VIDEO_MULTITRACK: u8 = 6;
const MOD_EX: u8 = 7;

// AudioPacketType (E-RTMP v2).
const AUDIO_SEQUENCE_START: u8 = 0;
const AUDIO_CODED_FRAMES: u8 = 1;
const AUDIO_SEQUENCE_END: u8 = 2;
const AUDIO_MULTICHANNEL_CONFIG: u8 = 4;
const AUDIO_MULTITRACK: u8 = 5;

/// `VideoFrameType.Command`: a command byte instead of a FourCC and payload.
const FRAME_TYPE_COMMAND: u8 = 5;
/// `VideoFrameType.KeyFrame`.
const FRAME_TYPE_KEY: u8 = 1;

/// `AvMultitrackType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multitrack {
    /// One track, no per-track size.
    OneTrack,
    /// Several tracks of one codec, each with a size.
    ManyTracks,
    /// Several tracks, each with its own FourCC and a size.
    ManyTracksManyCodecs,
}

impl Multitrack {
    fn from_bits(what: &'static str, bits: u8) -> Result<Self, ContainerError> {
        match bits {
            0 => Ok(Self::OneTrack),
            1 => Ok(Self::ManyTracks),
            2 => Ok(Self::ManyTracksManyCodecs),
            other => Err(ContainerError::malformed(
                what,
                format!("multitrack type {other}"),
            )),
        }
    }
}

/// Reads a message body front to back, every read bounds-checked.
struct Reader<'a> {
    what: &'static str,
    body: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, body: &'a Bytes) -> Self {
        Reader { what, body, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ContainerError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.body.len())
            .ok_or_else(|| {
                ContainerError::truncated(self.what, self.pos.saturating_add(n), self.body.len())
            })?;
        let bytes = &self.body[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, ContainerError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ContainerError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Result<usize, ContainerError> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    fn fourcc(&mut self) -> Result<[u8; 4], ContainerError> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// Skips `ModEx` prefixes: returns the packet type that follows them.
    fn skip_mod_ex(&mut self, mut packet_type: u8) -> Result<u8, ContainerError> {
        let mut seen = 0;
        while packet_type == MOD_EX {
            seen += 1;
            if seen > MAX_MOD_EX {
                return Err(ContainerError::malformed(
                    self.what,
                    format!("more than {MAX_MOD_EX} ModEx prefixes"),
                ));
            }
            let mut size = usize::from(self.u8()?) + 1;
            if size == 256 {
                size = usize::from(self.u16()?) + 1;
            }
            self.take(size)?;
            // ModEx type (high nibble, ignored) and the next packet type.
            packet_type = self.u8()? & 0x0F;
        }
        Ok(packet_type)
    }

    /// What follows the packet type (and its `ModEx` prefixes): a multitrack header (its
    /// type, the packet type of its tracks and, unless each track names its own, their
    /// FourCC) when `packet_type` is `multitrack` (which differs for video and audio), else
    /// the FourCC. Returns the packet type of the media, the multitrack type, the FourCC.
    fn track_header(
        &mut self,
        packet_type: u8,
        multitrack: u8,
    ) -> Result<TrackHeader, ContainerError> {
        if packet_type != multitrack {
            return Ok((packet_type, None, Some(self.fourcc()?)));
        }
        let b = self.u8()?;
        let kind = Multitrack::from_bits(self.what, b >> 4)?;
        let packet_type = b & 0x0F;
        if packet_type == multitrack || packet_type == MOD_EX {
            return Err(ContainerError::malformed(
                self.what,
                format!("packet type {packet_type} inside a multitrack message"),
            ));
        }
        let fourcc = match kind {
            Multitrack::ManyTracksManyCodecs => None,
            _ => Some(self.fourcc()?),
        };
        Ok((packet_type, Some(kind), fourcc))
    }

    /// The bytes from here to `end`, as a slice of the body.
    fn slice_to(&mut self, end: usize) -> Bytes {
        let start = self.pos.min(end);
        self.pos = end;
        self.body.slice(start..end)
    }
}

/// One track of a (possibly multitrack) message, as far as the header goes.
struct Track {
    fourcc: [u8; 4],
    /// The track's payload: everything after its header up to the next track.
    payload: Bytes,
}

/// Walks the tracks of a message after its header and returns the default one, if the
/// message carries it. `multitrack` is `None` for a single-track message, whose payload is
/// the rest of the body.
fn default_track(
    r: &mut Reader<'_>,
    multitrack: Option<Multitrack>,
    mut fourcc: Option<[u8; 4]>,
) -> Result<Option<Track>, ContainerError> {
    let Some(kind) = multitrack else {
        let fourcc = fourcc.ok_or_else(|| ContainerError::malformed(r.what, "no FourCC"))?;
        let payload = r.slice_to(r.body.len());
        return Ok(Some(Track { fourcc, payload }));
    };
    for _ in 0..MAX_TRACKS {
        if kind == Multitrack::ManyTracksManyCodecs {
            fourcc = Some(r.fourcc()?);
        }
        let track_id = r.u8()?;
        let end = if kind == Multitrack::OneTrack {
            r.body.len()
        } else {
            let size = r.u24()?;
            r.pos
                .checked_add(size)
                .filter(|end| *end <= r.body.len())
                .ok_or_else(|| {
                    ContainerError::truncated(r.what, r.pos.saturating_add(size), r.body.len())
                })?
        };
        let payload = r.slice_to(end);
        if track_id == DEFAULT_TRACK {
            let fourcc = fourcc.ok_or_else(|| ContainerError::malformed(r.what, "no FourCC"))?;
            return Ok(Some(Track { fourcc, payload }));
        }
        if kind == Multitrack::OneTrack || r.pos >= r.body.len() {
            return Ok(None);
        }
    }
    Err(ContainerError::malformed(
        r.what,
        format!("more than {MAX_TRACKS} tracks in one message"),
    ))
}

/// Parses an extended video tag (`IsExHeader` set): `IsExHeader | FrameType(3) |
/// PacketType(4)`, then `ModEx` prefixes, a multitrack header or a FourCC, then the body.
pub(super) fn parse_video(body: &Bytes) -> Result<VideoTag, ContainerError> {
    const WHAT: &str = "E-RTMP video tag";
    let mut r = Reader::new(WHAT, body);
    let first = r.u8()?;
    let frame_type = (first >> 4) & 0x07;
    let packet_type = r.skip_mod_ex(first & 0x0F)?;
    // A command frame carries one command byte instead of a FourCC and codec payload.
    if frame_type == FRAME_TYPE_COMMAND && packet_type != VIDEO_METADATA {
        return Ok(VideoTag::Info);
    }
    let (packet_type, multitrack, fourcc) = r.track_header(packet_type, VIDEO_MULTITRACK)?;
    let Some(track) = default_track(&mut r, multitrack, fourcc)? else {
        return Ok(VideoTag::Info); // another track's media: not ours to transcode
    };
    let Some(codec) = VideoFourCc::from_fourcc(track.fourcc) else {
        return Ok(VideoTag::Unsupported {
            codec: fourcc_name(track.fourcc),
        });
    };
    let payload = track.payload;
    match packet_type {
        VIDEO_SEQUENCE_START => Ok(VideoTag::SequenceStart {
            codec,
            config: payload,
        }),
        VIDEO_CODED_FRAMES | VIDEO_CODED_FRAMES_X => {
            let keyframe = frame_type == FRAME_TYPE_KEY;
            let (composition_time_ms, data) =
                if packet_type == VIDEO_CODED_FRAMES && codec.has_composition_time() {
                    if payload.len() < 3 {
                        return Err(ContainerError::truncated(WHAT, 3, payload.len()));
                    }
                    (si24(payload[0], payload[1], payload[2]), payload.slice(3..))
                } else {
                    // CodedFramesX: composition time implicitly zero; AV1 and VP9 have none.
                    (0, payload)
                };
            if data.is_empty() {
                return Ok(VideoTag::Info);
            }
            Ok(VideoTag::CodedFrames {
                codec,
                keyframe,
                composition_time_ms,
                data,
            })
        }
        VIDEO_SEQUENCE_END => Ok(VideoTag::SequenceEnd),
        VIDEO_METADATA | VIDEO_MPEG2TS_SEQUENCE_START => Ok(VideoTag::Info),
        other => Err(ContainerError::malformed(
            WHAT,
            format!("video packet type {other}"),
        )),
    }
}

/// Parses an extended audio tag (`SoundFormat = 9`): `9 | PacketType(4)`, then `ModEx`
/// prefixes, a multitrack header or a FourCC, then the body.
pub(super) fn parse_audio(body: &Bytes) -> Result<AudioTag, ContainerError> {
    const WHAT: &str = "E-RTMP audio tag";
    let mut r = Reader::new(WHAT, body);
    let first = r.u8()?;
    let packet_type = r.skip_mod_ex(first & 0x0F)?;
    let (packet_type, multitrack, fourcc) = r.track_header(packet_type, AUDIO_MULTITRACK)?;
    let Some(track) = default_track(&mut r, multitrack, fourcc)? else {
        return Ok(AudioTag::Info);
    };
    let Some(codec) = AudioFourCc::from_fourcc(track.fourcc) else {
        return Ok(AudioTag::Unsupported {
            codec: fourcc_name(track.fourcc),
        });
    };
    match packet_type {
        AUDIO_SEQUENCE_START => Ok(AudioTag::SequenceStart {
            codec,
            config: track.payload,
        }),
        AUDIO_CODED_FRAMES if track.payload.is_empty() => Ok(AudioTag::Info),
        AUDIO_CODED_FRAMES => Ok(AudioTag::CodedFrames {
            codec,
            data: track.payload,
        }),
        // The channel layout is read from the decoded audio itself.
        AUDIO_SEQUENCE_END | AUDIO_MULTICHANNEL_CONFIG => Ok(AudioTag::Info),
        other => Err(ContainerError::malformed(
            WHAT,
            format!("audio packet type {other}"),
        )),
    }
}

/// Renders a FourCC for an error message, escaping bytes that are not printable ASCII.
pub(super) fn fourcc_name(fourcc: [u8; 4]) -> String {
    fourcc.escape_ascii().to_string()
}

/// Reads a big-endian signed 24-bit integer.
pub(super) fn si24(b0: u8, b1: u8, b2: u8) -> i32 {
    // Put the 24 bits at the top of an i32, then shift back arithmetically to sign-extend.
    i32::from_be_bytes([b0, b1, b2, 0]) >> 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn video(bytes: &[u8]) -> Result<VideoTag, ContainerError> {
        parse_video(&Bytes::copy_from_slice(bytes))
    }

    fn audio(bytes: &[u8]) -> Result<AudioTag, ContainerError> {
        parse_audio(&Bytes::copy_from_slice(bytes))
    }

    /// The first bytes of what ffmpeg 9 sends for HEVC (x265): a sequence start with the
    /// hvcC, a key frame with a composition time, an inter frame, a metadata command.
    #[test]
    fn hevc_as_ffmpeg_sends_it() {
        assert_eq!(
            video(b"\x90hvc1\x01\x01\x60").expect("valid"),
            VideoTag::SequenceStart {
                codec: VideoFourCc::Hevc,
                config: Bytes::from_static(b"\x01\x01\x60"),
            }
        );
        assert_eq!(
            video(b"\x91hvc1\x00\x00\x43\x00\x00\x00\x01\x26").expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Hevc,
                keyframe: true,
                composition_time_ms: 0x43,
                data: Bytes::from_static(b"\x00\x00\x00\x01\x26"),
            }
        );
        assert!(matches!(
            video(b"\xa1hvc1\xff\xff\xfe\x00\x00\x00\x01\x02").expect("valid"),
            VideoTag::CodedFrames {
                keyframe: false,
                composition_time_ms: -2,
                ..
            }
        ));
        assert_eq!(
            video(b"\xd4hvc1\x02\x00\x09colorInfo").expect("valid"),
            VideoTag::Info
        );
        assert_eq!(video(b"\x92hvc1").expect("valid"), VideoTag::SequenceEnd);
    }

    /// AV1 and VP9 frames carry no composition time: the payload starts at once.
    #[test]
    fn av1_and_vp9_have_no_composition_time() {
        assert_eq!(
            video(b"\x91av01\x12\x00\x0a\x0b").expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Av1,
                keyframe: true,
                composition_time_ms: 0,
                data: Bytes::from_static(b"\x12\x00\x0a\x0b"),
            }
        );
        assert_eq!(
            video(b"\xa1vp09\x82\x49").expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Vp9,
                keyframe: false,
                composition_time_ms: 0,
                data: Bytes::from_static(b"\x82\x49"),
            }
        );
    }

    #[test]
    fn coded_frames_x_has_an_implicit_zero_composition_time() {
        assert_eq!(
            video(b"\xa3avc1\0\0\0\x01\x41").expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Avc,
                keyframe: false,
                composition_time_ms: 0,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            }
        );
    }

    #[test]
    fn other_fourccs_are_named() {
        assert_eq!(
            video(b"\x90vvc1\x01").expect("valid"),
            VideoTag::Unsupported {
                codec: "vvc1".to_owned()
            }
        );
        assert_eq!(
            audio(b"\x90fLaC").expect("valid"),
            AudioTag::Unsupported {
                codec: "fLaC".to_owned()
            }
        );
        assert_eq!(
            video(b"\x90\x00\xffab").expect("valid"),
            VideoTag::Unsupported {
                codec: "\\x00\\xffab".to_owned()
            }
        );
    }

    /// ModEx prefixes (a nanosecond offset) are stepped over; a message made only of them
    /// is refused.
    #[test]
    fn mod_ex_is_skipped() {
        // ModEx, 3 bytes of offset, then (type 0 | CodedFrames).
        assert!(matches!(
            video(b"\x97\x02\x00\x01\x02\x01hvc1\0\0\0\x01").expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Hevc,
                keyframe: true,
                ..
            }
        ));
        // A 300-byte ModEx payload: the size escapes to 16 bits.
        let mut long = vec![0x97, 0xFF, 0x01, 0x2B];
        long.extend_from_slice(&[0; 300]);
        long.extend_from_slice(b"\x01av01\x12\x00");
        assert!(matches!(
            video(&long).expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Av1,
                ..
            }
        ));
        let mut endless = vec![0x97];
        for _ in 0..=MAX_MOD_EX {
            endless.extend_from_slice(&[0x00, 0x00, 0x07]);
        }
        assert!(matches!(
            video(&endless),
            Err(ContainerError::Malformed { .. })
        ));
    }

    /// Builds a ManyTracks video message of one codec: (track id, payload) per track.
    fn many_tracks(packet_type: u8, fourcc: &[u8; 4], tracks: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![0x96, (1 << 4) | packet_type];
        out.extend_from_slice(fourcc);
        for (id, payload) in tracks {
            out.push(*id);
            let len = u32::try_from(payload.len()).expect("small");
            out.extend_from_slice(&len.to_be_bytes()[1..]);
            out.extend_from_slice(payload);
        }
        out
    }

    #[test]
    fn multitrack_takes_the_default_track() {
        // Track 1 first, then track 0: track 0's payload, whatever the order.
        let msg = many_tracks(
            VIDEO_CODED_FRAMES,
            b"hvc1",
            &[(1, b"\0\0\x05one"), (0, b"\0\0\x07zero")],
        );
        assert_eq!(
            video(&msg).expect("valid"),
            VideoTag::CodedFrames {
                codec: VideoFourCc::Hevc,
                keyframe: true,
                composition_time_ms: 7,
                data: Bytes::from_static(b"zero"),
            }
        );
        // Only other tracks: nothing for the pipeline.
        let msg = many_tracks(VIDEO_CODED_FRAMES, b"hvc1", &[(2, b"\0\0\0x")]);
        assert_eq!(video(&msg).expect("valid"), VideoTag::Info);
        // OneTrack: no size, the rest is the track.
        assert_eq!(
            video(b"\x96\x00av01\x00\x81\x00").expect("valid"),
            VideoTag::SequenceStart {
                codec: VideoFourCc::Av1,
                config: Bytes::from_static(b"\x81\x00"),
            }
        );
        assert_eq!(
            video(b"\x96\x00av01\x03\x81").expect("valid"),
            VideoTag::Info
        );
        // ManyTracksManyCodecs: a FourCC per track.
        assert_eq!(
            video(b"\x96\x20vp09\x01\x00\x00\x01Xavc1\x00\x00\x00\x02\x01\x64").expect("valid"),
            VideoTag::SequenceStart {
                codec: VideoFourCc::Avc,
                config: Bytes::from_static(b"\x01\x64"),
            }
        );
    }

    #[test]
    fn multitrack_is_bounded() {
        // A track whose size runs past the message.
        assert!(matches!(
            video(&many_tracks(VIDEO_CODED_FRAMES, b"hvc1", &[(1, b"ab")])[..9]),
            Err(ContainerError::Truncated { .. })
        ));
        // More tracks than the cap, none of them the default.
        let tracks: Vec<(u8, &[u8])> = (1..=20).map(|i| (i, &b"x"[..])).collect();
        assert!(matches!(
            video(&many_tracks(VIDEO_CODED_FRAMES, b"hvc1", &tracks)),
            Err(ContainerError::Malformed { .. })
        ));
        // Multitrack inside multitrack, an unknown multitrack type.
        assert!(matches!(
            video(b"\x96\x16hvc1"),
            Err(ContainerError::Malformed { .. })
        ));
        assert!(matches!(
            video(b"\x96\x31hvc1"),
            Err(ContainerError::Malformed { .. })
        ));
    }

    /// What ffmpeg 9 sends for Opus and AC-3.
    #[test]
    fn audio_as_ffmpeg_sends_it() {
        assert_eq!(
            audio(b"\x90OpusOpusHead\x01\x01\x38\x01").expect("valid"),
            AudioTag::SequenceStart {
                codec: AudioFourCc::Opus,
                config: Bytes::from_static(b"OpusHead\x01\x01\x38\x01"),
            }
        );
        assert_eq!(
            audio(b"\x94Opus\x01\x01\x00\x00\x00\x04").expect("valid"),
            AudioTag::Info
        );
        assert_eq!(
            audio(b"\x91Opus\xf8\x9e").expect("valid"),
            AudioTag::CodedFrames {
                codec: AudioFourCc::Opus,
                data: Bytes::from_static(b"\xf8\x9e"),
            }
        );
        assert_eq!(
            audio(b"\x90ac-3").expect("valid"),
            AudioTag::SequenceStart {
                codec: AudioFourCc::Ac3,
                config: Bytes::new(),
            }
        );
        assert_eq!(
            audio(b"\x91ec-3\x0b\x77").expect("valid"),
            AudioTag::CodedFrames {
                codec: AudioFourCc::Eac3,
                data: Bytes::from_static(b"\x0b\x77"),
            }
        );
        assert_eq!(
            audio(b"\x90mp4a\x12\x10").expect("valid"),
            AudioTag::SequenceStart {
                codec: AudioFourCc::Aac,
                config: Bytes::from_static(b"\x12\x10"),
            }
        );
        assert!(matches!(
            audio(b"\x95\x01Opus\x00\xf8"),
            Ok(AudioTag::CodedFrames {
                codec: AudioFourCc::Opus,
                ..
            })
        ));
        assert!(matches!(
            audio(b"\x93Opus"),
            Err(ContainerError::Malformed { .. })
        ));
        assert!(matches!(
            audio(b"\x91Op"),
            Err(ContainerError::Truncated { .. })
        ));
    }

    #[test]
    fn announced_fourccs_are_the_ones_taken() {
        for f in FOURCCS {
            let bytes: [u8; 4] = f.as_bytes().try_into().expect("four bytes");
            let video = VideoFourCc::from_fourcc(bytes).map(VideoFourCc::fourcc);
            let audio = AudioFourCc::from_fourcc(bytes).map(AudioFourCc::fourcc);
            assert_eq!(video.or(audio), Some(f), "{f}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..96)) {
            let body = Bytes::from(body);
            let _ = parse_video(&body);
            let _ = parse_audio(&body);
        }

        /// Whatever the other tracks hold, the default track's payload comes back whole.
        #[test]
        fn the_default_track_survives_any_neighbours(
            before in proptest::collection::vec((1u8..=255, proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
            after in proptest::collection::vec((1u8..=255, proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
            payload in proptest::collection::vec(any::<u8>(), 1..80),
        ) {
            let mut tracks: Vec<(u8, &[u8])> = before.iter().map(|(i, p)| (*i, &p[..])).collect();
            tracks.push((0, &payload[..]));
            tracks.extend(after.iter().map(|(i, p)| (*i, &p[..])));
            let msg = many_tracks(VIDEO_SEQUENCE_START, b"av01", &tracks);
            prop_assert_eq!(
                video(&msg).expect("valid"),
                VideoTag::SequenceStart { codec: VideoFourCc::Av1, config: Bytes::from(payload) }
            );
        }
    }
}
