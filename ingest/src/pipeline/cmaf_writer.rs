//! One rung's CMAF output: the init segment, built at the rung's first keyframe, and one
//! fragment per part (or per segment without parts), from the segmenter's Annex B video
//! and ADTS audio.
//!
//! Video samples are length-prefixed NAL units with the parameter sets and delimiters left
//! out (the init segment's `avcC` or `hvcC` has them), OBUs without temporal delimiters
//! (AV1) or frames as they are (VP9), timed in 90 kHz ticks on the same clock as the MPEG-TS
//! output; audio samples are raw AAC frames, timed in the sample rate. A sample lasts until
//! the next one's decode time; the last of a fragment until the next fragment's first video
//! packet (the segmenter knows it), an AAC frame at the end of a fragment its nominal 1024
//! samples, and the very last video sample of the stream the mean frame interval.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use certs::c2pa::LiveSigner;
use container::aac::AacConfig;
use container::fmp4::{AudioTrack, Fmp4Muxer, Sample, VideoConfig, VideoTrack};
use container::h264::{self, AvcConfig};
use container::hevc::{self, HevcConfig};
use container::{av1, ContainerError};
use domain::c2pa::manifest::Assertion;
use domain::c2pa::vsi::Numbering;
use domain::InitSegment;

use super::clock::Clock;
use super::segmenter::{AudioFrame, VideoPacket};
use super::source::SourceVideo;

/// Where a rung's video and its decoder configuration come from.
#[derive(Debug, Clone)]
pub(super) enum VideoSource {
    /// The publisher's own video, in its own codec (the source rung).
    Publisher(SourceVideo),
    /// H.264 whose SPS and PPS an encoder writes in-band before its first IDR (x264 rungs).
    InBand,
}

impl VideoSource {
    /// The sample entry's configuration, from the publisher's record or, where it left
    /// the parameter sets out (they travel in-band), from the first key frame (`first`,
    /// as the segmenter holds it).
    fn config(&self, first: &[u8]) -> Result<VideoConfig, ContainerError> {
        // Samples are written with four-byte lengths, whatever the publisher used.
        let avc = |mut config: AvcConfig| {
            config.nal_length_size = 4;
            config.record().map(|r| VideoConfig::Avc(Bytes::from(r)))
        };
        match self {
            VideoSource::InBand => avc(AvcConfig::from_annexb(first)?),
            VideoSource::Publisher(SourceVideo::H264(c)) if c.sps.is_empty() => {
                avc(AvcConfig::from_annexb(first)?)
            }
            VideoSource::Publisher(SourceVideo::H264(c)) => avc(c.clone()),
            VideoSource::Publisher(SourceVideo::Hevc(c)) => {
                let config = if c.sps.is_empty() {
                    HevcConfig::from_annexb(first)?
                } else {
                    c.clone()
                };
                Ok(VideoConfig::Hevc(Bytes::from(config.record()?)))
            }
            VideoSource::Publisher(SourceVideo::Av1(c)) => Ok(VideoConfig::Av1(c.record.clone())),
            VideoSource::Publisher(SourceVideo::Vp9(c)) => Ok(VideoConfig::Vp9(c.vpcc())),
        }
    }

    /// One access unit as the segmenter holds it (the source's form, see
    /// [`SourceVideo::access_unit`]) as an MP4 sample, appended to `out`.
    fn sample(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ContainerError> {
        match self {
            VideoSource::Publisher(SourceVideo::Hevc(_)) => {
                hevc::annexb_to_hvcc(data, out)?;
            }
            VideoSource::Publisher(SourceVideo::Av1(_)) => {
                av1::to_sample(data, out)?;
            }
            VideoSource::Publisher(SourceVideo::Vp9(_)) => out.extend_from_slice(data),
            VideoSource::InBand | VideoSource::Publisher(SourceVideo::H264(_)) => {
                h264::annexb_to_avcc(data, out)?;
            }
        }
        Ok(())
    }
}

/// The audio of a rendition: what the init segment declares.
#[derive(Debug, Clone)]
pub(super) struct CmafAudio {
    /// The parsed AudioSpecificConfig.
    pub(super) config: AacConfig,
    /// Its bytes, as the `esds` box carries them.
    pub(super) asc: Bytes,
}

/// What signs a rung's CMAF output (C2PA, docs/provenance.md): the session's signer and
/// what this rendition's manifest says.
#[derive(Debug, Clone)]
pub(super) struct Provenance {
    pub(super) signer: Arc<LiveSigner>,
    /// The manifest's label, which every VSI names.
    pub(super) label: String,
    /// The claim's title.
    pub(super) title: String,
    /// sealcast's own assertions (the stream's identity).
    pub(super) extra: Vec<Assertion>,
}

/// The VSI timescale: milliseconds.
const VSI_TIMESCALE: u32 = 1000;

/// Fragments one rung.
#[derive(Debug)]
pub(super) struct CmafWriter {
    video: VideoSource,
    audio: Option<CmafAudio>,
    /// Signs the init segment and every fragment and segment, when the session signs.
    provenance: Option<Provenance>,
    /// Fragments in `pending`, and when the first of them starts (wall clock, ms) and how
    /// long they last (ms): what the segment's own VSI says.
    pending_fragments: u32,
    pending_start_ms: u64,
    pending_ms: u32,
    /// The `mfhd` sequence number of the first fragment in `pending`.
    pending_first: u32,
    /// The number of the next segment in the rendition, from 1: its own VSI's sequence
    /// number (`vsi::Numbering::Segment`).
    segments: u32,
    /// Set at the first keyframe.
    muxer: Option<Fmp4Muxer>,
    /// `mfhd` sequence number of the next fragment, from 1.
    fragments: u32,
    /// The bytes of the current segment's parts so far: a segment is exactly its parts.
    pending: BytesMut,
    /// First video decode time and video samples since: the mean frame interval.
    first_dts_90k: Option<u64>,
    last_dts_90k: u64,
    video_samples: u64,
}

impl CmafWriter {
    pub(super) fn new(
        video: VideoSource,
        audio: Option<CmafAudio>,
        provenance: Option<Provenance>,
    ) -> Self {
        CmafWriter {
            video,
            audio,
            provenance,
            pending_fragments: 0,
            pending_start_ms: 0,
            pending_ms: 0,
            pending_first: 1,
            segments: 1,
            muxer: None,
            fragments: 1,
            pending: BytesMut::new(),
            first_dts_90k: None,
            last_dts_90k: 0,
            video_samples: 0,
        }
    }

    /// The init segment, built from the rung's first keyframe (`first`, Annex B) the first
    /// time it is asked for.
    pub(super) fn init(
        &mut self,
        first: &[u8],
        width: u32,
        height: u32,
    ) -> Result<InitSegment, ContainerError> {
        let muxer = match &self.muxer {
            Some(m) => m,
            None => {
                let side = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
                let video = VideoTrack {
                    config: self.video.config(first)?,
                    width: side(width),
                    height: side(height),
                };
                let audio = self.audio.as_ref().map(|a| AudioTrack {
                    audio_specific_config: a.asc.clone(),
                    sample_rate: a.config.sample_rate,
                    channels: match a.config.channel_config {
                        0 => 2,
                        7 => 8,
                        n => u16::from(n),
                    },
                });
                self.muxer.insert(Fmp4Muxer::new(video, audio))
            }
        };
        let mut bytes = muxer.init_segment()?;
        if let Some(p) = &self.provenance {
            let signed = p
                .signer
                .sign_init(&bytes, &p.label, &p.title, p.extra.clone())
                .map_err(|e| ContainerError::malformed("init segment", e.to_string()))?;
            bytes = Bytes::from(signed);
        }
        let len = bytes.len();
        InitSegment::new(bytes).map_err(|_| ContainerError::TooLong {
            what: "init segment",
            len,
            max: InitSegment::MAX_LEN,
        })
    }

    /// One fragment of `video` and `audio` (a part, or a whole segment without parts),
    /// kept for the segment it belongs to. `next_video_dts_ms` is the decode time of the
    /// video packet after it, `None` at the end of the stream.
    pub(super) fn fragment(
        &mut self,
        clock: Clock,
        video: &[VideoPacket],
        audio: &[AudioFrame],
        next_video_dts_ms: Option<i64>,
    ) -> Result<Bytes, ContainerError> {
        let video_samples = self.video_samples(clock, video, next_video_dts_ms)?;
        let audio_samples = self.audio_samples(clock, audio);
        let Some(muxer) = &self.muxer else {
            return Err(ContainerError::malformed(
                "fragment",
                "no init segment yet (no keyframe)",
            ));
        };
        let sequence = self.fragments;
        let mut bytes = muxer.fragment(sequence, &video_samples, &audio_samples)?;
        self.fragments = self.fragments.wrapping_add(1).max(1);
        let start_ms = video
            .first()
            .map(|v| v.pts_ms)
            .or(audio.first().map(|a| a.pts_ms))
            .map(|ms| clock.wall_ms(ms))
            .unwrap_or_default();
        let ms = fragment_ms(&video_samples);
        if self.pending_fragments == 0 {
            self.pending_start_ms = start_ms;
            self.pending_ms = 0;
            self.pending_first = sequence;
        }
        self.pending_fragments += 1;
        self.pending_ms = self.pending_ms.saturating_add(ms);
        if let Some(p) = &self.provenance {
            let emsg = p
                .signer
                .sign_fragment(
                    &bytes,
                    Numbering::Fragment,
                    &p.label,
                    start_ms / 1000,
                    VSI_TIMESCALE,
                    ms,
                )
                .map_err(|e| ContainerError::malformed("fragment", e.to_string()))?;
            let mut signed = BytesMut::with_capacity(emsg.len() + bytes.len());
            signed.extend_from_slice(&emsg);
            signed.extend_from_slice(&bytes);
            bytes = signed.freeze();
        }
        self.pending.extend_from_slice(&bytes);
        Ok(bytes)
    }

    /// The bytes of the segment whose fragments were made since the last call: they
    /// joined, after the segment's own VSI when the session signs, numbered by the
    /// segment's place in the rendition. A segment of one fragment whose `mfhd` is that
    /// number already says it (always so without parts) and gets no VSI of its own.
    pub(super) fn take_segment(&mut self) -> Result<Bytes, ContainerError> {
        let fragments = std::mem::take(&mut self.pending_fragments);
        let joined = self.pending.split().freeze();
        if fragments == 0 {
            return Ok(joined);
        }
        let number = self.segments;
        self.segments = self.segments.wrapping_add(1).max(1);
        let said = fragments == 1 && self.pending_first == number;
        let Some(p) = self.provenance.as_ref().filter(|_| !said) else {
            return Ok(joined);
        };
        let emsg = p
            .signer
            .sign_fragment(
                &joined,
                Numbering::Segment(number),
                &p.label,
                self.pending_start_ms / 1000,
                VSI_TIMESCALE,
                self.pending_ms,
            )
            .map_err(|e| ContainerError::malformed("segment", e.to_string()))?;
        let mut segment = BytesMut::with_capacity(emsg.len() + joined.len());
        segment.extend_from_slice(&emsg);
        segment.extend_from_slice(&joined);
        Ok(segment.freeze())
    }

    fn video_samples(
        &mut self,
        clock: Clock,
        video: &[VideoPacket],
        next_video_dts_ms: Option<i64>,
    ) -> Result<Vec<Sample>, ContainerError> {
        let mut samples = Vec::with_capacity(video.len());
        for (i, v) in video.iter().enumerate() {
            let dts = clock.to_90k(v.dts_ms);
            let pts = clock.to_90k(v.pts_ms);
            let next = video
                .get(i + 1)
                .map(|n| n.dts_ms)
                .or(next_video_dts_ms)
                .map(|ms| clock.to_90k(ms));
            let first = *self.first_dts_90k.get_or_insert(dts);
            self.last_dts_90k = dts;
            self.video_samples += 1;
            let duration = match next {
                Some(next) => next.saturating_sub(dts),
                None if self.video_samples > 1 => (dts - first.min(dts)) / (self.video_samples - 1),
                None => 3000,
            };
            let mut data = Vec::with_capacity(v.data.len());
            self.video.sample(&v.data, &mut data)?;
            samples.push(Sample {
                decode_time: dts,
                duration: u32::try_from(duration.max(1)).unwrap_or(u32::MAX),
                composition_offset: i32::try_from(i128::from(pts) - i128::from(dts)).unwrap_or(0),
                sync: v.keyframe,
                data: Bytes::from(data),
            });
        }
        Ok(samples)
    }

    fn audio_samples(&self, clock: Clock, audio: &[AudioFrame]) -> Vec<Sample> {
        let Some(track) = &self.audio else {
            return Vec::new();
        };
        let rate = u64::from(track.config.sample_rate);
        let at = |ms: i64| clock.to_90k(ms) * rate / 90_000;
        let frame = u32::from(track.config.samples_per_frame);
        audio
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let time = at(a.pts_ms);
                let duration = audio.get(i + 1).map_or(frame, |n| {
                    u32::try_from(at(n.pts_ms).saturating_sub(time)).unwrap_or(frame)
                });
                Sample {
                    decode_time: time,
                    duration: duration.max(1),
                    composition_offset: 0,
                    sync: true,
                    data: a.data.slice(adts_header_len(&a.data).min(a.data.len())..),
                }
            })
            .collect()
    }
}

/// How long a fragment's video lasts, in milliseconds (its samples are timed in 90 kHz
/// ticks).
fn fragment_ms(video: &[Sample]) -> u32 {
    let ticks: u64 = video.iter().map(|s| u64::from(s.duration)).sum();
    u32::try_from(ticks / 90).unwrap_or(u32::MAX)
}

/// The length of an ADTS frame's header: 7 bytes, or 9 with a CRC (`protection_absent`
/// clear). 0 if the frame does not start with an ADTS sync word (already raw).
pub(crate) fn adts_header_len(frame: &[u8]) -> usize {
    match frame {
        [0xFF, b1, ..] if b1 & 0xF0 == 0xF0 => {
            if b1 & 1 == 1 {
                7
            } else {
                9
            }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_headers_are_seven_or_nine_bytes() {
        let config = AacConfig::parse(&[0x12, 0x10]).expect("AAC-LC 44.1 kHz stereo");
        let header = config.adts_header(10).expect("header");
        assert_eq!(adts_header_len(&header), 7);
        let mut crc = header;
        crc[1] &= !1;
        assert_eq!(adts_header_len(&crc), 9);
        assert_eq!(adts_header_len(&[0x21, 0x10]), 0);
    }
}
