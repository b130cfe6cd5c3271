//! The CMAF (fragmented MP4) muxer for HLS segments and LL-HLS parts: an init segment per
//! rendition (`ftyp` + `moov` with the codec configuration), then any number of fragments
//! (`moof` + `mdat`), each decodable after the init segment alone.
//!
//! A segment is one or more fragments; an LL-HLS part is one fragment. The muxer does not
//! decide where either ends: the caller hands it the samples of one fragment at a time, in
//! decode order, each with its decode time and duration in the track's timescale. Sample
//! timing is written per sample (`trun` with durations, sizes, flags and signed
//! composition offsets), so fragments of any length line up, and the first fragment of a
//! segment can start at any decode time (`tfdt`).
//!
//! Video is H.264 (`avc1` + `avcC`) or HEVC (`hvc1` + `hvcC`) as length-prefixed NAL
//! units, AV1 (`av01` + `av1C`) as OBUs, or VP9 (`vp09` + `vpcC`) as frames: the `src`
//! rung passes the publisher's codec through, every encoded rung is H.264. Audio is raw
//! AAC frames (no ADTS header). Pure: no I/O, no clock.
//!
//! The pipeline writes it for CMAF ladders (`pipeline::cmaf_writer`); MPEG-TS ladders use
//! [`super::ts`].

use bytes::{BufMut, Bytes, BytesMut};

use super::ContainerError;

/// Timescale of the video track: the 90 kHz clock the rest of the ingest counts in.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Track id of the video track.
const VIDEO_TRACK: u32 = 1;
/// Track id of the audio track, when there is one.
const AUDIO_TRACK: u32 = 2;

/// `sample_flags` of a sync sample: depends on no other sample.
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, not a sync sample.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// The identity matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The codec of a video track: which sample entry it gets and the configuration box
/// inside it, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VideoConfig {
    /// `avc1` with this AVCDecoderConfigurationRecord (`avcC`), e.g. from
    /// [`AvcConfig::record`](super::AvcConfig::record).
    Avc(Bytes),
    /// `hvc1` with this HEVCDecoderConfigurationRecord (`hvcC`), e.g. from
    /// [`HevcConfig::record`](super::hevc::HevcConfig::record): parameter sets there only.
    Hevc(Bytes),
    /// `av01` with this AV1CodecConfigurationRecord (`av1C`).
    Av1(Bytes),
    /// `vp09` with this `vpcC` payload (version 1 and flags first), e.g. from
    /// [`Vp9Config::vpcc`](super::vp9::Vp9Config::vpcc).
    Vp9(Bytes),
}

impl VideoConfig {
    /// The sample entry's type and its configuration box's type and payload.
    fn boxes(&self) -> (&'static [u8; 4], &'static [u8; 4], &Bytes) {
        match self {
            VideoConfig::Avc(b) => (b"avc1", b"avcC", b),
            VideoConfig::Hevc(b) => (b"hvc1", b"hvcC", b),
            VideoConfig::Av1(b) => (b"av01", b"av1C", b),
            VideoConfig::Vp9(b) => (b"vp09", b"vpcC", b),
        }
    }
}

/// The video track of a rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The codec and its configuration.
    pub config: VideoConfig,
    /// Picture width in pixels.
    pub width: u16,
    /// Picture height in pixels.
    pub height: u16,
}

/// The audio track of a rendition: AAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// The AudioSpecificConfig, as the publisher's AAC sequence header carried it.
    pub audio_specific_config: Bytes,
    /// Samples per second; also the track's timescale.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
}

/// One sample (a video access unit or an AAC frame) of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in the track's timescale.
    pub decode_time: u64,
    /// Duration in the track's timescale: the next sample's decode time minus this one's.
    pub duration: u32,
    /// Presentation time minus decode time (B-frames make it non-zero).
    pub composition_offset: i32,
    /// Whether decoding can start here (an IDR picture; every AAC frame).
    pub sync: bool,
    /// The sample's bytes: length-prefixed NAL units (H.264, HEVC), OBUs (AV1) or a frame
    /// (VP9) for video, a raw AAC frame for audio.
    pub data: Bytes,
}

/// Writes the init segment and the fragments of one rendition.
#[derive(Debug, Clone)]
pub struct Fmp4Muxer {
    video: VideoTrack,
    audio: Option<AudioTrack>,
}

impl Fmp4Muxer {
    /// A muxer for a video track and, optionally, an audio track.
    pub fn new(video: VideoTrack, audio: Option<AudioTrack>) -> Self {
        Self { video, audio }
    }

    /// The init segment: `ftyp` and `moov`, with no samples (they all live in fragments).
    pub fn init_segment(&self) -> Result<Bytes, ContainerError> {
        let mut out = BytesMut::new();
        write_box(&mut out, b"ftyp", |b| {
            b.put_slice(b"iso6"); // major brand
            b.put_u32(0); // minor version
            for brand in [b"iso6", b"cmfc", b"mp41", b"hlsf"] {
                b.put_slice(brand);
            }
            Ok(())
        })?;
        write_box(&mut out, b"moov", |b| {
            let next_track = if self.audio.is_some() { 3 } else { 2 };
            write_full_box(b, b"mvhd", 0, 0, |b| {
                b.put_u32(0); // creation time
                b.put_u32(0); // modification time
                b.put_u32(1000); // timescale
                b.put_u32(0); // duration: unknown, fragments follow
                b.put_u32(0x0001_0000); // rate 1.0
                b.put_u16(0x0100); // volume 1.0
                b.put_bytes(0, 10); // reserved
                MATRIX.iter().for_each(|v| b.put_u32(*v));
                b.put_bytes(0, 24); // pre_defined
                b.put_u32(next_track);
                Ok(())
            })?;
            self.video_trak(b)?;
            if let Some(audio) = &self.audio {
                audio_trak(b, audio)?;
            }
            write_box(b, b"mvex", |b| {
                trex(b, VIDEO_TRACK)?;
                if self.audio.is_some() {
                    trex(b, AUDIO_TRACK)?;
                }
                Ok(())
            })
        })?;
        Ok(out.freeze())
    }

    /// One fragment: `moof` (sequence number `sequence`, one `traf` per track that has
    /// samples) and `mdat` (the video samples, then the audio samples). Samples must be
    /// in decode order; the first sample of each track gives its `tfdt`. A fragment
    /// without any sample, or with audio samples but no audio track, is an error.
    pub fn fragment(
        &self,
        sequence: u32,
        video: &[Sample],
        audio: &[Sample],
    ) -> Result<Bytes, ContainerError> {
        const WHAT: &str = "fragment";
        if video.is_empty() && audio.is_empty() {
            return Err(ContainerError::malformed(WHAT, "no samples"));
        }
        if !audio.is_empty() && self.audio.is_none() {
            return Err(ContainerError::malformed(
                WHAT,
                "audio samples without an audio track",
            ));
        }
        let mut out = BytesMut::new();
        // Where each trun's data_offset field is, to be filled in once moof's size is known.
        let mut offsets: Vec<(usize, usize)> = Vec::new();
        let mut data_len = 0usize;
        write_box(&mut out, b"moof", |b| {
            write_full_box(b, b"mfhd", 0, 0, |b| {
                b.put_u32(sequence);
                Ok(())
            })?;
            for (track, samples, per_sample_flags) in
                [(VIDEO_TRACK, video, true), (AUDIO_TRACK, audio, false)]
            {
                if samples.is_empty() {
                    continue;
                }
                let at = traf(b, track, samples, per_sample_flags)?;
                offsets.push((at, data_len));
                data_len = samples
                    .iter()
                    .try_fold(data_len, |n, s| n.checked_add(s.data.len()))
                    .ok_or_else(|| ContainerError::malformed(WHAT, "too many bytes"))?;
            }
            Ok(())
        })?;
        let moof_len = out.len();
        for (at, before) in offsets {
            // data_offset counts from the start of moof to the sample's first byte in mdat.
            let offset = moof_len
                .checked_add(8)
                .and_then(|n| n.checked_add(before))
                .and_then(|n| i32::try_from(n).ok())
                .ok_or(ContainerError::TooLong {
                    what: "fragment",
                    len: moof_len + before,
                    max: i32::MAX as usize,
                })?;
            out[at..at + 4].copy_from_slice(&offset.to_be_bytes());
        }
        let mdat_len = u32::try_from(data_len + 8).map_err(|_| ContainerError::TooLong {
            what: "mdat",
            len: data_len,
            max: u32::MAX as usize - 8,
        })?;
        out.reserve(data_len + 8);
        out.put_u32(mdat_len);
        out.put_slice(b"mdat");
        for sample in video.iter().chain(audio) {
            out.put_slice(&sample.data);
        }
        Ok(out.freeze())
    }

    fn video_trak(&self, b: &mut BytesMut) -> Result<(), ContainerError> {
        let v = &self.video;
        write_box(b, b"trak", |b| {
            tkhd(b, VIDEO_TRACK, 0, v.width, v.height)?;
            write_box(b, b"mdia", |b| {
                mdhd(b, VIDEO_TIMESCALE)?;
                hdlr(b, b"vide", b"VideoHandler")?;
                write_box(b, b"minf", |b| {
                    write_full_box(b, b"vmhd", 0, 1, |b| {
                        b.put_bytes(0, 8); // graphicsmode, opcolor
                        Ok(())
                    })?;
                    dinf(b)?;
                    let (entry, config_box, config) = v.config.boxes();
                    stbl(b, |b| {
                        write_box(b, entry, |b| {
                            sample_entry_header(b);
                            b.put_u16(0); // pre_defined
                            b.put_u16(0); // reserved
                            b.put_bytes(0, 12); // pre_defined
                            b.put_u16(v.width);
                            b.put_u16(v.height);
                            b.put_u32(0x0048_0000); // 72 dpi
                            b.put_u32(0x0048_0000);
                            b.put_u32(0); // reserved
                            b.put_u16(1); // frame count
                            b.put_bytes(0, 32); // compressor name
                            b.put_u16(0x0018); // depth
                            b.put_i16(-1); // pre_defined
                            write_box(b, config_box, |b| {
                                b.put_slice(config);
                                Ok(())
                            })
                        })
                    })
                })
            })
        })
    }
}

fn audio_trak(b: &mut BytesMut, a: &AudioTrack) -> Result<(), ContainerError> {
    write_box(b, b"trak", |b| {
        tkhd(b, AUDIO_TRACK, 0x0100, 0, 0)?;
        write_box(b, b"mdia", |b| {
            mdhd(b, a.sample_rate)?;
            hdlr(b, b"soun", b"SoundHandler")?;
            write_box(b, b"minf", |b| {
                write_full_box(b, b"smhd", 0, 0, |b| {
                    b.put_u32(0); // balance, reserved
                    Ok(())
                })?;
                dinf(b)?;
                stbl(b, |b| {
                    write_box(b, b"mp4a", |b| {
                        sample_entry_header(b);
                        b.put_bytes(0, 8); // reserved
                        b.put_u16(a.channels);
                        b.put_u16(16); // sample size
                        b.put_u32(0); // pre_defined, reserved
                                      // 16.16 fixed point; rates above 65535 Hz do not fit (AAC has none).
                        let rate = u16::try_from(a.sample_rate).map_err(|_| {
                            ContainerError::malformed("AudioTrack", "sample rate over 65535")
                        })?;
                        b.put_u32(u32::from(rate) << 16);
                        esds(b, &a.audio_specific_config)
                    })
                })
            })
        })
    })
}

/// The ES descriptor of an AAC track (ISO/IEC 14496-1 §7.2.6.5 and 14496-14 §5.6).
fn esds(b: &mut BytesMut, asc: &[u8]) -> Result<(), ContainerError> {
    let specific = descriptor(0x05, asc)?;
    let mut config = vec![
        0x40, // objectTypeIndication: MPEG-4 audio
        0x15, // streamType 5 (audio) << 2 | upStream 0 | reserved 1
        0, 0, 0, // bufferSizeDB
    ];
    config.extend_from_slice(&[0; 8]); // maxBitrate, avgBitrate: unknown
    config.extend_from_slice(&specific);
    let config = descriptor(0x04, &config)?;
    let mut es = vec![0, AUDIO_TRACK as u8, 0]; // ES_ID, flags
    es.extend_from_slice(&config);
    es.extend_from_slice(&descriptor(0x06, &[0x02])?); // SLConfig: predefined MP4
    let es = descriptor(0x03, &es)?;
    write_full_box(b, b"esds", 0, 0, |b| {
        b.put_slice(&es);
        Ok(())
    })
}

/// A descriptor: tag, length in the four-byte expandable form, body.
fn descriptor(tag: u8, body: &[u8]) -> Result<Vec<u8>, ContainerError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|n| *n < 1 << 28)
        .ok_or(ContainerError::TooLong {
            what: "descriptor",
            len: body.len(),
            max: (1 << 28) - 1,
        })?;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&[
        0x80 | ((len >> 21) as u8 & 0x7F),
        0x80 | ((len >> 14) as u8 & 0x7F),
        0x80 | ((len >> 7) as u8 & 0x7F),
        len as u8 & 0x7F,
    ]);
    out.extend_from_slice(body);
    Ok(out)
}

/// `tkhd`, enabled and in the movie.
fn tkhd(
    b: &mut BytesMut,
    track: u32,
    volume: u16,
    width: u16,
    height: u16,
) -> Result<(), ContainerError> {
    write_full_box(b, b"tkhd", 0, 0x3, |b| {
        b.put_u32(0); // creation time
        b.put_u32(0); // modification time
        b.put_u32(track);
        b.put_u32(0); // reserved
        b.put_u32(0); // duration
        b.put_bytes(0, 8); // reserved
        b.put_u16(0); // layer
        b.put_u16(0); // alternate group
        b.put_u16(volume);
        b.put_u16(0); // reserved
        MATRIX.iter().for_each(|v| b.put_u32(*v));
        b.put_u32(u32::from(width) << 16);
        b.put_u32(u32::from(height) << 16);
        Ok(())
    })
}

fn mdhd(b: &mut BytesMut, timescale: u32) -> Result<(), ContainerError> {
    write_full_box(b, b"mdhd", 0, 0, |b| {
        b.put_u32(0); // creation time
        b.put_u32(0); // modification time
        b.put_u32(timescale);
        b.put_u32(0); // duration
        b.put_u16(0x55C4); // language: "und"
        b.put_u16(0); // pre_defined
        Ok(())
    })
}

fn hdlr(b: &mut BytesMut, handler: &[u8; 4], name: &[u8]) -> Result<(), ContainerError> {
    write_full_box(b, b"hdlr", 0, 0, |b| {
        b.put_u32(0); // pre_defined
        b.put_slice(handler);
        b.put_bytes(0, 12); // reserved
        b.put_slice(name);
        b.put_u8(0);
        Ok(())
    })
}

/// `dinf` with one self-contained data reference.
fn dinf(b: &mut BytesMut) -> Result<(), ContainerError> {
    write_box(b, b"dinf", |b| {
        write_full_box(b, b"dref", 0, 0, |b| {
            b.put_u32(1); // entry count
            write_full_box(b, b"url ", 0, 1, |_| Ok(()))
        })
    })
}

/// `stbl` with one sample entry and no samples.
fn stbl(
    b: &mut BytesMut,
    entry: impl FnOnce(&mut BytesMut) -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    write_box(b, b"stbl", |b| {
        write_full_box(b, b"stsd", 0, 0, |b| {
            b.put_u32(1); // entry count
            entry(b)
        })?;
        for empty in [b"stts", b"stsc", b"stco"] {
            write_full_box(b, empty, 0, 0, |b| {
                b.put_u32(0);
                Ok(())
            })?;
        }
        write_full_box(b, b"stsz", 0, 0, |b| {
            b.put_u32(0); // sample size: per sample
            b.put_u32(0); // sample count
            Ok(())
        })
    })
}

/// The start of every sample entry.
fn sample_entry_header(b: &mut BytesMut) {
    b.put_bytes(0, 6); // reserved
    b.put_u16(1); // data reference index
}

fn trex(b: &mut BytesMut, track: u32) -> Result<(), ContainerError> {
    write_full_box(b, b"trex", 0, 0, |b| {
        b.put_u32(track);
        b.put_u32(1); // default sample description index
        b.put_u32(0); // default duration
        b.put_u32(0); // default size
        b.put_u32(0); // default flags
        Ok(())
    })
}

/// One `traf`; returns where its `trun`'s data_offset field is in `b`.
fn traf(
    b: &mut BytesMut,
    track: u32,
    samples: &[Sample],
    per_sample_flags: bool,
) -> Result<usize, ContainerError> {
    let mut data_offset_at = 0;
    write_box(b, b"traf", |b| {
        // default-base-is-moof: data offsets count from the start of moof.
        write_full_box(b, b"tfhd", 0, 0x02_0000, |b| {
            b.put_u32(track);
            Ok(())
        })?;
        write_full_box(b, b"tfdt", 1, 0, |b| {
            b.put_u64(samples.first().map_or(0, |s| s.decode_time));
            Ok(())
        })?;
        // data offset, then per sample: duration, size, [flags, composition offset].
        let flags = if per_sample_flags {
            0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800
        } else {
            0x000001 | 0x000100 | 0x000200
        };
        let count = u32::try_from(samples.len()).map_err(|_| ContainerError::TooLong {
            what: "trun",
            len: samples.len(),
            max: u32::MAX as usize,
        })?;
        // Version 1: signed composition offsets.
        write_full_box(b, b"trun", 1, flags, |b| {
            b.put_u32(count);
            data_offset_at = b.len();
            b.put_i32(0); // data offset, filled in by the caller
            for s in samples {
                let size = u32::try_from(s.data.len()).map_err(|_| ContainerError::TooLong {
                    what: "sample",
                    len: s.data.len(),
                    max: u32::MAX as usize,
                })?;
                b.put_u32(s.duration);
                b.put_u32(size);
                if per_sample_flags {
                    b.put_u32(if s.sync { SYNC_SAMPLE } else { NON_SYNC_SAMPLE });
                    b.put_i32(s.composition_offset);
                }
            }
            Ok(())
        })
    })?;
    Ok(data_offset_at)
}

/// Writes a box: size, type, then what `body` writes; the size is filled in afterwards.
fn write_box(
    b: &mut BytesMut,
    kind: &[u8; 4],
    body: impl FnOnce(&mut BytesMut) -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    let start = b.len();
    b.put_u32(0);
    b.put_slice(kind);
    body(b)?;
    let len = b.len() - start;
    let len = u32::try_from(len).map_err(|_| ContainerError::TooLong {
        what: "box",
        len,
        max: u32::MAX as usize,
    })?;
    b[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Writes a full box: a box whose body starts with a version byte and 24 bits of flags.
fn write_full_box(
    b: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut) -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    write_box(b, kind, |b| {
        b.put_u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
        body(b)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A box as read back: type, body.
    fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let len = u32::from_be_bytes(data[..4].try_into().expect("4 bytes")) as usize;
            assert!(
                len >= 8 && len <= data.len(),
                "box length {len} of {}",
                data.len()
            );
            let kind: [u8; 4] = data[4..8].try_into().expect("4 bytes");
            out.push((kind, &data[8..len]));
            data = &data[len..];
        }
        out
    }

    fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
        boxes(data)
            .into_iter()
            .find(|(k, _)| k == kind)
            .map(|(_, body)| body)
            .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(kind)))
    }

    fn muxer(audio: bool) -> Fmp4Muxer {
        Fmp4Muxer::new(
            VideoTrack {
                config: VideoConfig::Avc(Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0])),
                width: 640,
                height: 360,
            },
            audio.then(|| AudioTrack {
                audio_specific_config: Bytes::from_static(&[0x12, 0x10]),
                sample_rate: 44_100,
                channels: 2,
            }),
        )
    }

    fn sample(decode_time: u64, duration: u32, len: usize, fill: u8) -> Sample {
        Sample {
            decode_time,
            duration,
            composition_offset: 0,
            sync: decode_time == 0,
            data: Bytes::from(vec![fill; len]),
        }
    }

    #[test]
    fn init_segment_holds_both_tracks_and_their_configs() {
        let init = muxer(true).init_segment().expect("init");
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [*b"ftyp", *b"moov"]
        );
        let moov = child(&init, b"moov");
        let traks: Vec<_> = boxes(moov)
            .into_iter()
            .filter(|(k, _)| k == b"trak")
            .collect();
        assert_eq!(traks.len(), 2);
        let mvex = child(moov, b"mvex");
        assert_eq!(boxes(mvex).len(), 2);
        // The avcC record is carried byte for byte.
        let needle = [b'a', b'v', b'c', b'C', 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0];
        assert!(init.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn every_codec_gets_its_sample_entry_and_configuration_box() {
        for (config, entry, config_box) in [
            (
                VideoConfig::Hevc(Bytes::from_static(b"\x01hvcc")),
                b"hvc1",
                b"hvcC",
            ),
            (
                VideoConfig::Av1(Bytes::from_static(b"\x81av1c")),
                b"av01",
                b"av1C",
            ),
            (
                VideoConfig::Vp9(Bytes::from_static(b"\x01vpcc")),
                b"vp09",
                b"vpcC",
            ),
        ] {
            let payload = config.boxes().2.clone();
            let init = Fmp4Muxer::new(
                VideoTrack {
                    config,
                    width: 64,
                    height: 48,
                },
                None,
            )
            .init_segment()
            .expect("init");
            let stsd = child(
                child(
                    child(
                        child(child(child(&init, b"moov"), b"trak"), b"mdia"),
                        b"minf",
                    ),
                    b"stbl",
                ),
                b"stsd",
            );
            // Version, flags and entry count, then the sample entry.
            let (kind, body) = boxes(&stsd[8..])[0];
            assert_eq!(&kind, entry);
            // 78 bytes of visual sample entry, then the configuration box, as given.
            let (inner, inner_body) = boxes(&body[78..])[0];
            assert_eq!(&inner, config_box);
            assert_eq!(inner_body, &payload[..]);
        }
    }

    #[test]
    fn fragments_need_samples_and_an_audio_track_for_audio() {
        let video_only = muxer(false);
        assert!(video_only.fragment(1, &[], &[]).is_err());
        assert!(video_only
            .fragment(1, &[], &[sample(0, 1024, 10, 1)])
            .is_err());
    }

    proptest! {
        /// Whatever the samples, the data offsets point at each track's first sample in
        /// mdat, and the sample sizes add up to mdat.
        #[test]
        fn data_offsets_point_at_the_samples(
            video_lens in prop::collection::vec(1usize..2000, 0..20),
            audio_lens in prop::collection::vec(1usize..500, 0..20),
            sequence in any::<u32>(),
        ) {
            prop_assume!(!video_lens.is_empty() || !audio_lens.is_empty());
            let video: Vec<Sample> = video_lens.iter().enumerate()
                .map(|(i, len)| sample(i as u64 * 3000, 3000, *len, 0xAA)).collect();
            let audio: Vec<Sample> = audio_lens.iter().enumerate()
                .map(|(i, len)| sample(i as u64 * 1024, 1024, *len, 0x55)).collect();
            let fragment = muxer(true).fragment(sequence, &video, &audio).expect("fragment");
            let top = boxes(&fragment);
            prop_assert_eq!(top.len(), 2);
            let (moof, mdat) = (top[0].1, top[1].1);
            let moof_len = moof.len() + 8;
            prop_assert_eq!(mdat.len(), video_lens.iter().sum::<usize>() + audio_lens.iter().sum::<usize>());
            let mfhd = child(moof, b"mfhd");
            prop_assert_eq!(u32::from_be_bytes(mfhd[4..8].try_into().expect("4")), sequence);
            let trafs: Vec<_> = boxes(moof).into_iter().filter(|(k, _)| k == b"traf").collect();
            for (_, traf) in trafs {
                let tfhd = child(traf, b"tfhd");
                let track = u32::from_be_bytes(tfhd[4..8].try_into().expect("4"));
                let trun = child(traf, b"trun");
                let count = u32::from_be_bytes(trun[4..8].try_into().expect("4")) as usize;
                let offset = i32::from_be_bytes(trun[8..12].try_into().expect("4")) as usize;
                let (expected_fill, lens) = if track == VIDEO_TRACK {
                    (0xAA, &video_lens)
                } else {
                    (0x55, &audio_lens)
                };
                prop_assert_eq!(count, lens.len());
                // Inside mdat's body, at the track's first byte.
                let in_mdat = offset - moof_len - 8;
                prop_assert_eq!(mdat[in_mdat], expected_fill);
                let total: usize = lens.iter().sum();
                prop_assert!(mdat[in_mdat..in_mdat + total].iter().all(|b| *b == expected_fill));
            }
        }
    }
}
