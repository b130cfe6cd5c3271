//! SRT's protocol level: MPEG-TS (what SRT publishers send) turned into pipeline input,
//! sans-IO: bytes in, [`MediaInput`] out, in the same terms an RTMP publish gives them
//! ([`TsInputs`]); and the settings of the SRT listener, which is `ingest::srt`
//! ([`SrtSettings`]).
//!
//! - Video: H.264 and HEVC arrive in Annex B with their parameter sets in-band; the
//!   configuration record is rebuilt from them ([`AvcConfig::from_annexb`],
//!   [`HevcConfig::from_annexb`]) and sent as [`MediaInput::VideoConfig`] whenever it
//!   changes, the access units go on length-prefixed without them. A key frame is an
//!   IDR (H.264) or IRAP (HEVC) picture, read from the bitstream.
//! - Audio: ADTS AAC is split into raw frames with an AudioSpecificConfig built from the
//!   ADTS header; Opus packets are taken out of their MPEG-TS control headers; AC-3 and
//!   E-AC-3 go on as they come. Each frame gets its own time (a PES may hold several).
//! - Time: 33-bit 90 kHz timestamps are unwrapped and counted in milliseconds from the
//!   first one, like an RTMP publish's clock. The first video frame is held until the
//!   second arrives, so that the frame rate (which MPEG-TS does not state) can be sent
//!   before the pipeline opens its encoders.

use std::time::Duration;

use bytes::Bytes;
use container::h264::{annexb_nals, annexb_to_avcc, nal_type, AvcConfig, NAL_SPS};
use container::hevc::{self, HevcConfig};
use container::ts_demux::{EsKind, Pes, TsDemuxer};
use container::ContainerError;

use crate::media::{AudioCodec, MediaInput, VideoCodec};
use crate::IntakeError;

/// SRT sessions open at once, by default.
pub const DEFAULT_MAX_SESSIONS: usize = 64;
/// SRT sessions from one address, by default.
pub const DEFAULT_MAX_SESSIONS_PER_IP: usize = 4;
/// SRT latency (the receiver's buffer for retransmissions), by default: libsrt's default.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(120);

/// How the SRT listener runs.
#[derive(Clone)]
pub struct SrtSettings {
    /// Sessions open at once; more are rejected.
    pub max_sessions: usize,
    /// Sessions from one address; more are rejected.
    pub max_sessions_per_ip: usize,
    /// SRT latency asked of callers.
    pub latency: Duration,
    /// The passphrase callers must encrypt with (10 to 79 bytes), or none: then callers
    /// must not encrypt.
    pub passphrase: Option<String>,
}

impl Default for SrtSettings {
    fn default() -> Self {
        SrtSettings {
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_ip: DEFAULT_MAX_SESSIONS_PER_IP,
            latency: DEFAULT_LATENCY,
            passphrase: None,
        }
    }
}

impl std::fmt::Debug for SrtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtSettings")
            .field("max_sessions", &self.max_sessions)
            .field("max_sessions_per_ip", &self.max_sessions_per_ip)
            .field("latency", &self.latency)
            .field("encrypted", &self.passphrase.is_some())
            .finish()
    }
}

impl SrtSettings {
    /// Checks the values: caps of at least one, a passphrase of 10 to 79 bytes (SRT's
    /// bounds), a latency of 20 ms to 8 s.
    pub fn validate(&self) -> Result<(), IntakeError> {
        if self.max_sessions == 0 || self.max_sessions_per_ip == 0 {
            return Err(IntakeError::Config(
                "[ingest] srt_max_sessions and srt_max_sessions_per_ip must be at least 1".into(),
            ));
        }
        if let Some(p) = &self.passphrase {
            if !(10..=79).contains(&p.len()) {
                return Err(IntakeError::Config(
                    "the SRT passphrase (--srt-passphrase-file) must be 10 to 79 bytes".into(),
                ));
            }
        }
        if !(Duration::from_millis(20)..=Duration::from_secs(8)).contains(&self.latency) {
            return Err(IntakeError::Config(
                "[ingest] srt_latency_ms must be 20 to 8000".into(),
            ));
        }
        Ok(())
    }
}

/// The 33-bit wrap of MPEG-TS timestamps.
const WRAP_90K: i64 = 1 << 33;
/// AAC sampling frequencies by index.
const AAC_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// One SRT publish's MPEG-TS, turned into pipeline input.
#[derive(Debug, Default)]
pub struct TsInputs {
    demuxer: TsDemuxer,
    pes: Vec<Pes>,
    /// The first timestamp (extended), the zero of the millisecond clock.
    base_90k: Option<i64>,
    /// The last extended timestamp: the reference a wrapped one is placed near.
    last_90k: i64,
    /// The video configuration last sent (its record).
    video_config: Option<Bytes>,
    /// The audio configuration last sent.
    audio_config: Option<(AudioCodec, Bytes)>,
    /// The first video frame and its decode time (90 kHz, extended), held until the
    /// second gives the frame rate.
    held: Option<(MediaInput, i64)>,
    /// Whether the frame rate was sent (or given up on).
    rate_sent: bool,
    /// Video held back while the program map names an audio stream whose configuration
    /// has not come yet (at most [`MAX_HELD_FOR_AUDIO`] inputs): the pipeline decides at
    /// its first keyframe whether the publish has audio, and an AAC configuration comes
    /// only with the first ADTS frame, which MPEG-TS muxers often send after the first
    /// picture.
    waiting_for_audio: Vec<MediaInput>,
}

/// Most inputs held for a late audio configuration (about three seconds of 30 fps
/// video): past that, video goes on without audio, as an RTMP publish's would.
const MAX_HELD_FOR_AUDIO: usize = 96;

impl TsInputs {
    /// A converter that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream; appends what they complete to `out`. An error
    /// reports one bad packet or access unit (skipped): the caller counts them.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<MediaInput>) -> Result<(), ContainerError> {
        let demuxed = self.demuxer.push(bytes, &mut self.pes);
        let converted = self.convert(out);
        demuxed.and(converted)
    }

    /// The end of the stream: what the demuxer still held.
    pub fn finish(&mut self, out: &mut Vec<MediaInput>) -> Result<(), ContainerError> {
        let demuxed = self.demuxer.finish(&mut self.pes);
        let converted = self.convert(out);
        out.append(&mut self.waiting_for_audio);
        if let Some((held, _)) = self.held.take() {
            out.push(held);
        }
        demuxed.and(converted)
    }

    fn convert(&mut self, out: &mut Vec<MediaInput>) -> Result<(), ContainerError> {
        let mut fresh = Vec::new();
        let result = self.convert_pes(&mut fresh);
        let audio_expected = self.demuxer.streams().1.is_some();
        for input in fresh {
            let is_audio = matches!(
                input,
                MediaInput::Audio { .. } | MediaInput::AudioConfig { .. }
            );
            if is_audio {
                // A configuration first, then the video that waited for it.
                let config = matches!(input, MediaInput::AudioConfig { .. });
                if config {
                    out.push(input);
                    out.append(&mut self.waiting_for_audio);
                } else {
                    out.append(&mut self.waiting_for_audio);
                    out.push(input);
                }
            } else if audio_expected
                && self.audio_config.is_none()
                && self.waiting_for_audio.len() < MAX_HELD_FOR_AUDIO
            {
                self.waiting_for_audio.push(input);
            } else {
                out.append(&mut self.waiting_for_audio);
                out.push(input);
            }
        }
        result
    }

    fn convert_pes(&mut self, out: &mut Vec<MediaInput>) -> Result<(), ContainerError> {
        let mut result = Ok(());
        for pes in std::mem::take(&mut self.pes) {
            let Some(pts) = pes.pts_90k else {
                continue; // no time, no place in the stream
            };
            let pts = self.extend(pts);
            let dts = pes.dts_90k.map_or(pts, |d| self.extend(d));
            let converted = match pes.kind {
                EsKind::H264 | EsKind::Hevc => self.video(pes.kind, pts, dts, &pes.data, out),
                EsKind::Aac => self.aac(pts, &pes.data, out),
                EsKind::Opus => self.opus(pts, &pes.data, out),
                EsKind::Ac3 | EsKind::Eac3 => {
                    let codec = if pes.kind == EsKind::Ac3 {
                        AudioCodec::Ac3
                    } else {
                        AudioCodec::Eac3
                    };
                    self.audio_config(codec, Bytes::new(), out);
                    out.push(MediaInput::Audio {
                        codec,
                        pts_ms: self.ms(pts),
                        data: pes.data.clone(),
                    });
                    Ok(())
                }
            };
            if let Err(e) = converted {
                result = Err(e);
            }
        }
        result
    }

    /// A 33-bit timestamp placed within half a wrap of the last one.
    fn extend(&mut self, raw: u64) -> i64 {
        let raw = i64::try_from(raw & (WRAP_90K as u64 - 1)).unwrap_or(0);
        let near = if self.base_90k.is_some() {
            self.last_90k
        } else {
            raw
        };
        let wraps = (near - raw + WRAP_90K / 2).div_euclid(WRAP_90K);
        let extended = raw + wraps * WRAP_90K;
        self.base_90k.get_or_insert(extended);
        self.last_90k = extended;
        extended
    }

    fn ms(&self, extended_90k: i64) -> i64 {
        (extended_90k - self.base_90k.unwrap_or(extended_90k)).div_euclid(90)
    }

    fn video(
        &mut self,
        kind: EsKind,
        pts: i64,
        dts: i64,
        annexb: &[u8],
        out: &mut Vec<MediaInput>,
    ) -> Result<(), ContainerError> {
        let (codec, record) = if kind == EsKind::Hevc {
            let has_sps = annexb_nals(annexb).any(|n| hevc::nal_type(n) == Some(hevc::NAL_SPS));
            let record = if has_sps {
                Some(HevcConfig::from_annexb(annexb)?.record()?)
            } else {
                None
            };
            (VideoCodec::Hevc, record)
        } else {
            let has_sps = annexb_nals(annexb).any(|n| nal_type(n) == Some(NAL_SPS));
            let record = if has_sps {
                Some(AvcConfig::from_annexb(annexb)?.record()?)
            } else {
                None
            };
            (VideoCodec::H264, record)
        };
        if let Some(record) = record {
            if self.video_config.as_deref() != Some(&record[..]) {
                let record = Bytes::from(record);
                self.video_config = Some(record.clone());
                out.push(MediaInput::VideoConfig {
                    codec,
                    config: record,
                });
            }
        }
        if self.video_config.is_none() {
            return Ok(()); // nothing decodable before the first parameter sets
        }
        let mut data = Vec::with_capacity(annexb.len());
        let keyframe = match codec {
            VideoCodec::Hevc => hevc::annexb_to_hvcc(annexb, &mut data)?,
            _ => annexb_to_avcc(annexb, &mut data)?,
        };
        if data.is_empty() {
            return Ok(());
        }
        let frame = MediaInput::Video {
            dts_ms: self.ms(dts),
            cts_ms: i32::try_from((pts - dts).div_euclid(90)).unwrap_or(0),
            keyframe,
            data: Bytes::from(data),
        };
        if self.rate_sent {
            out.push(frame);
            return Ok(());
        }
        match self.held.take() {
            None => self.held = Some((frame, dts)),
            Some((first, first_dts)) => {
                // A frame interval of 1 to 250 fps, in 90 kHz ticks.
                let interval = dts - first_dts;
                if (360..=90_000).contains(&interval) {
                    out.push(MediaInput::FrameRate(90_000.0 / interval as f64));
                }
                self.rate_sent = true;
                out.push(first);
                out.push(frame);
            }
        }
        Ok(())
    }

    fn audio_config(&mut self, codec: AudioCodec, config: Bytes, out: &mut Vec<MediaInput>) {
        let fresh = Some((codec, config.clone()));
        if self.audio_config != fresh {
            self.audio_config = fresh;
            out.push(MediaInput::AudioConfig { codec, config });
        }
    }

    /// ADTS frames into raw AAC with their own times (1024 samples apart).
    fn aac(
        &mut self,
        pts: i64,
        mut data: &[u8],
        out: &mut Vec<MediaInput>,
    ) -> Result<(), ContainerError> {
        const WHAT: &str = "ADTS frame";
        let mut index: i64 = 0;
        while !data.is_empty() {
            if data.len() < 7 {
                return Err(ContainerError::truncated(WHAT, 7, data.len()));
            }
            if data[0] != 0xFF || data[1] & 0xF0 != 0xF0 {
                return Err(ContainerError::malformed(WHAT, "no sync word"));
            }
            let header_len = if data[1] & 0x01 == 0 { 9 } else { 7 };
            let object_type = (data[2] >> 6) + 1;
            let frequency_index = (data[2] >> 2) & 0x0F;
            let channels = ((data[2] & 0x01) << 2) | (data[3] >> 6);
            let frame_len = usize::from(data[3] & 0x03) << 11
                | usize::from(data[4]) << 3
                | usize::from(data[5] >> 5);
            let Some(&rate) = AAC_RATES.get(usize::from(frequency_index)) else {
                return Err(ContainerError::malformed(
                    WHAT,
                    format!("sampling frequency index {frequency_index}"),
                ));
            };
            if frame_len < header_len || frame_len > data.len() {
                return Err(ContainerError::malformed(
                    WHAT,
                    format!("frame length {frame_len} of {} bytes", data.len()),
                ));
            }
            let asc = Bytes::copy_from_slice(&[
                (object_type << 3) | (frequency_index >> 1),
                ((frequency_index & 1) << 7) | (channels << 3),
            ]);
            self.audio_config(AudioCodec::Aac, asc, out);
            let at = pts + index * 1024 * 90_000 / i64::from(rate);
            out.push(MediaInput::Audio {
                codec: AudioCodec::Aac,
                pts_ms: self.ms(at),
                data: Bytes::copy_from_slice(&data[header_len..frame_len]),
            });
            index += 1;
            data = &data[frame_len..];
        }
        Ok(())
    }

    /// Opus packets out of their control headers, each timed by the durations before it.
    fn opus(
        &mut self,
        pts: i64,
        mut data: &[u8],
        out: &mut Vec<MediaInput>,
    ) -> Result<(), ContainerError> {
        const WHAT: &str = "Opus control header";
        self.audio_config(AudioCodec::Opus, Bytes::new(), out);
        let mut samples: i64 = 0;
        while !data.is_empty() {
            // control_header_prefix (11 bits, all ones), then the trim and extension flags.
            if data.len() < 2 || data[0] != 0x7F || data[1] & 0xE0 != 0xE0 {
                return Err(ContainerError::malformed(WHAT, "no prefix"));
            }
            let flags = data[1];
            let mut pos = 2;
            let mut size = 0usize;
            loop {
                let Some(&b) = data.get(pos) else {
                    return Err(ContainerError::truncated(WHAT, pos + 1, data.len()));
                };
                pos += 1;
                size += usize::from(b);
                if b != 0xFF {
                    break;
                }
            }
            if flags & 0x10 != 0 {
                pos += 2; // start_trim
            }
            if flags & 0x08 != 0 {
                pos += 2; // end_trim
            }
            if flags & 0x04 != 0 {
                let len = usize::from(*data.get(pos).unwrap_or(&0));
                pos += 1 + len;
            }
            let Some(packet) = data.get(pos..pos + size) else {
                return Err(ContainerError::truncated(WHAT, pos + size, data.len()));
            };
            let at = pts + samples * 90_000 / 48_000;
            if !packet.is_empty() {
                out.push(MediaInput::Audio {
                    codec: AudioCodec::Opus,
                    pts_ms: self.ms(at),
                    data: Bytes::copy_from_slice(packet),
                });
            }
            samples += i64::from(opus_samples(packet));
            data = &data[pos + size..];
        }
        Ok(())
    }
}

/// Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1); 0 for an
/// empty or malformed packet.
fn opus_samples(packet: &[u8]) -> u32 {
    let Some(&toc) = packet.first() else {
        return 0;
    };
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |b| u32::from(b & 0x3F)),
    };
    per_frame * frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use container::ts::{TsAudio, TsMuxer, TsVideo};

    #[test]
    fn timestamps_unwrap_across_the_33_bit_boundary() {
        let mut inputs = TsInputs::new();
        let near_end = (1u64 << 33) - 900;
        let first = inputs.extend(near_end);
        assert_eq!(inputs.ms(first), 0);
        // 20 ms later, after the wrap.
        let after = inputs.extend(900);
        assert_eq!(inputs.ms(after), 20);
        // And back before it (an audio frame a little earlier).
        let before = inputs.extend(near_end - 90);
        assert_eq!(inputs.ms(before), -1);
    }

    #[test]
    fn opus_packet_durations() {
        assert_eq!(opus_samples(&[0xFC]), 960); // CELT 20 ms, one frame
        assert_eq!(opus_samples(&[0x09]), 1920); // SILK 20 ms, two frames
        assert_eq!(opus_samples(&[0x03, 0x03]), 1440); // SILK 10 ms, three frames
        assert_eq!(opus_samples(&[]), 0);
    }

    #[test]
    fn aac_and_h264_from_our_own_muxer() {
        // An IDR access unit with SPS and PPS in-band, then a P frame; two ADTS frames.
        // x264's baseline SPS and PPS for 64x48.
        let sps = [
            0x67, 0x42, 0xC0, 0x0A, 0xD9, 0x04, 0x7B, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
            0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x22, 0x64, 0x80,
        ];
        let pps = [0x68, 0xCB, 0x83, 0xCB, 0x20];
        let mut idr = Vec::new();
        for nal in [&sps[..], &pps[..], &[0x65, 0x88, 0x84][..]] {
            idr.extend_from_slice(&[0, 0, 0, 1]);
            idr.extend_from_slice(nal);
        }
        let video = vec![
            TsVideo {
                pts_90k: 90_000,
                dts_90k: 90_000,
                keyframe: true,
                data: Bytes::from(idr),
            },
            TsVideo {
                pts_90k: 93_000,
                dts_90k: 93_000,
                keyframe: false,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9A]),
            },
            TsVideo {
                pts_90k: 96_000,
                dts_90k: 96_000,
                keyframe: false,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9B]),
            },
        ];
        // AAC-LC 48 kHz stereo, 3-byte payloads.
        let adts = |b: u8| [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, b, b, b];
        let mut frames = adts(1).to_vec();
        frames.extend_from_slice(&adts(2));
        let audio = vec![TsAudio {
            pts_90k: 90_000,
            data: Bytes::from(frames),
        }];
        // The pictures first, the audio after them, as many muxers send a stream's start.
        let mut muxer = TsMuxer::new(true);
        let (pictures, sound) = (muxer.segment(&video, &[]), muxer.segment(&[], &audio));
        let mut inputs = TsInputs::new();
        let mut out = Vec::new();
        inputs.push(&pictures, &mut out).expect("valid");
        inputs.push(&sound, &mut out).expect("valid");
        inputs.finish(&mut out).expect("valid");
        let video_config = out.iter().find_map(|i| match i {
            MediaInput::VideoConfig { codec, config } => Some((*codec, config.clone())),
            _ => None,
        });
        let (codec, record) = video_config.expect("a configuration");
        assert_eq!(codec, VideoCodec::H264);
        let avc = AvcConfig::parse(&record).expect("a valid record");
        assert_eq!(avc.sps.len(), 1);
        let frames: Vec<(i64, bool)> = out
            .iter()
            .filter_map(|i| match i {
                MediaInput::Video {
                    dts_ms, keyframe, ..
                } => Some((*dts_ms, *keyframe)),
                _ => None,
            })
            .collect();
        assert_eq!(frames, [(0, true), (33, false), (66, false)]);
        assert!(out
            .iter()
            .any(|i| matches!(i, MediaInput::FrameRate(r) if (r - 30.0).abs() < 0.01)));
        let audio: Vec<(i64, usize)> = out
            .iter()
            .filter_map(|i| match i {
                MediaInput::Audio { pts_ms, data, .. } => Some((*pts_ms, data.len())),
                _ => None,
            })
            .collect();
        assert_eq!(audio, [(0, 3), (21, 3)]);
        assert!(out.iter().any(|i| matches!(
            i,
            MediaInput::AudioConfig { codec: AudioCodec::Aac, config } if config[..] == [0x11, 0x90]
        )));
        // The pipeline hears of the audio before the first picture (it decides at the first keyframe whether there is any).
        let first = |want: fn(&MediaInput) -> bool| out.iter().position(want).expect("there");
        assert!(
            first(|i| matches!(i, MediaInput::AudioConfig { .. }))
                < first(|i| matches!(i, MediaInput::Video { .. }))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)) {
            let mut inputs = TsInputs::new();
            let mut out = Vec::new();
            let _ = inputs.push(&bytes, &mut out);
            let _ = inputs.finish(&mut out);
        }
    }
}
