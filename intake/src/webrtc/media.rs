//! A WebRTC publisher's frames as pipeline input, sans-IO: H.264 access units (Annex B, as
//! str0m depacketizes them) and Opus packets, with their RTP times, in; [`MediaInput`]
//! out, and when to ask the publisher for a keyframe.
//!
//! - **Video**: the parameter sets of an access unit become a
//!   [`MediaInput::VideoConfig`] (an AVCDecoderConfigurationRecord) whenever they change,
//!   the access unit itself AVCC-framed [`MediaInput::Video`] (keyframe = it holds an IDR
//!   slice). Nothing goes before the first keyframe with its parameter sets, nor after a
//!   loss (a frame that is not contiguous with the one before) until the next keyframe:
//!   the source rung passes the publisher's bytes through, and a frame that refers to a
//!   lost one would be broken on every rung.
//! - **Audio**: Opus packets, announced once by an OpusHead; the pipeline transcodes them
//!   to AAC.
//! - **Time**: each track's RTP clock (90 kHz video, 48 kHz Opus; str0m extends the 32-bit
//!   timestamps) counted from its first frame, which is placed at its arrival on the
//!   session's clock ([`TrackClock`]). The arrival of one frame per track, not of every
//!   frame, so network jitter does not move media time; tracks line up to within the
//!   difference of their first frames' delays. WebRTC video has no B-frames, so decode
//!   time is presentation time; one that would not advance (a reordered or repeated
//!   timestamp) is moved one millisecond past the last.
//! - **Keyframes** ([`KeyframePacer`]): browsers send one every few minutes unless asked,
//!   and the ladder cuts segments only at the publisher's keyframes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use container::h264::{self, AvcConfig};
use container::ContainerError;

use crate::media::{AudioCodec, MediaInput, VideoCodec};

/// RTP clock rate of H.264 (RFC 6184).
pub const VIDEO_RATE: u32 = 90_000;
/// How soon after an unanswered keyframe request another is sent.
pub const KEYFRAME_RETRY: Duration = Duration::from_millis(500);
/// Unanswered PLIs before asking with a FIR instead (a sender may ignore one kind).
pub const PLIS_BEFORE_FIR: u32 = 3;

/// A keyframe request to send to the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequest {
    /// Picture Loss Indication.
    Pli,
    /// Full Intra Request.
    Fir,
}

/// Media time from one track's RTP clock: its first timestamp is at `anchor_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackClock {
    first: u64,
    anchor_ms: i64,
    rate: u32,
}

impl TrackClock {
    /// A clock whose timestamp `first` (at `rate` Hz) is `anchor_ms`.
    pub fn new(first: u64, anchor_ms: i64, rate: u32) -> Self {
        TrackClock {
            first,
            anchor_ms,
            rate: rate.max(1),
        }
    }

    /// Milliseconds at timestamp `ticks` (earlier than the first: before the anchor),
    /// rounded down, saturating at the ends of `i64`.
    pub fn ms(&self, ticks: u64) -> i64 {
        let delta = i128::from(ticks) - i128::from(self.first);
        let ms = (delta * 1000).div_euclid(i128::from(self.rate)) + i128::from(self.anchor_ms);
        i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
    }
}

/// When to ask for a keyframe, from the video's own times: when the media time since the
/// last keyframe reaches the segment target (less one frame, so that the keyframe the
/// request brings, which cannot be older than the next frame, arrives at or after the
/// target), or at once when the stream needs one (its start, a loss); again every
/// [`KEYFRAME_RETRY`] while none comes; a FIR after [`PLIS_BEFORE_FIR`] unanswered PLIs.
#[derive(Debug, Clone)]
pub struct KeyframePacer {
    interval_ms: i64,
    retry_ms: i64,
    last_keyframe: Option<i64>,
    last_request: Option<i64>,
    unanswered: u32,
    urgent: bool,
}

impl KeyframePacer {
    /// A pacer for segments of `target`, with frames `frame` apart.
    pub fn new(target: Duration, frame: Duration) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        KeyframePacer {
            interval_ms: (ms(target) - ms(frame)).max(ms(KEYFRAME_RETRY)),
            retry_ms: ms(KEYFRAME_RETRY),
            last_keyframe: None,
            last_request: None,
            unanswered: 0,
            urgent: true,
        }
    }

    /// The stream needs a keyframe as soon as possible.
    pub fn urgent(&mut self) {
        self.urgent = true;
    }

    /// A video frame at `pts_ms` arrived (a keyframe or not); the request to send now, if
    /// any.
    pub fn frame(&mut self, pts_ms: i64, keyframe: bool) -> Option<KeyframeRequest> {
        if keyframe {
            self.last_keyframe = Some(pts_ms);
            self.last_request = None;
            self.unanswered = 0;
            self.urgent = false;
            return None;
        }
        let due = self.urgent
            || self
                .last_keyframe
                .is_none_or(|k| pts_ms.saturating_sub(k) >= self.interval_ms);
        let waited = self
            .last_request
            .is_none_or(|r| pts_ms.saturating_sub(r) >= self.retry_ms || pts_ms < r);
        if !due || !waited {
            return None;
        }
        self.last_request = Some(pts_ms);
        self.unanswered += 1;
        Some(if self.unanswered > PLIS_BEFORE_FIR {
            KeyframeRequest::Fir
        } else {
            KeyframeRequest::Pli
        })
    }
}

/// What one frame came to.
#[derive(Debug, Default)]
pub struct Converted {
    /// Pipeline input, in order (a configuration before the frame it configures).
    pub inputs: Vec<MediaInput>,
    /// A keyframe request to send now.
    pub keyframe_request: Option<KeyframeRequest>,
    /// Why the frame itself did not go on, if it did not.
    pub dropped: Option<Dropped>,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Waiting for a keyframe (the start, or after a loss or an overflow).
    WaitingForKeyframe,
    /// The access unit or its parameter sets do not parse (what the parser said).
    Malformed(String),
    /// Audio from before the last audio frame.
    Late,
}

/// One session's conversion.
#[derive(Debug)]
pub struct Converter {
    epoch: Option<Instant>,
    video: Option<TrackClock>,
    audio: Option<TrackClock>,
    record: Option<Bytes>,
    waiting_for_keyframe: bool,
    last_dts: Option<i64>,
    last_audio: Option<i64>,
    opus_announced: bool,
    pacer: KeyframePacer,
}

impl Converter {
    /// A converter whose keyframe requests aim at segments of `segment_target`.
    pub fn new(segment_target: Duration) -> Self {
        Converter {
            epoch: None,
            video: None,
            audio: None,
            record: None,
            waiting_for_keyframe: true,
            last_dts: None,
            last_audio: None,
            opus_announced: false,
            // 30 fps is what browsers and the WHIP muxer send by default; a frame more or
            // less only moves where within a frame the request lands.
            pacer: KeyframePacer::new(segment_target, Duration::from_millis(33)),
        }
    }

    fn anchor(&mut self, arrival: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(arrival);
        i64::try_from(arrival.saturating_duration_since(epoch).as_millis()).unwrap_or(i64::MAX)
    }

    /// The pipeline could not take a frame: video waits for the next keyframe.
    pub fn overflowed(&mut self) {
        self.waiting_for_keyframe = true;
        self.pacer.urgent();
    }

    /// One H.264 access unit (Annex B) at RTP time `ticks` (90 kHz), arrived at `arrival`;
    /// `contiguous` unless packets were lost before it.
    pub fn video(
        &mut self,
        ticks: u64,
        arrival: Instant,
        contiguous: bool,
        annexb: &[u8],
    ) -> Converted {
        if self.video.is_none() {
            let anchor = self.anchor(arrival);
            self.video = Some(TrackClock::new(ticks, anchor, VIDEO_RATE));
        }
        let pts = self.video.map_or(0, |c| c.ms(ticks));
        let mut out = Converted::default();
        if !contiguous {
            self.waiting_for_keyframe = true;
            self.pacer.urgent();
        }
        let keyframe =
            h264::annexb_nals(annexb).any(|nal| h264::nal_type(nal) == Some(h264::NAL_IDR));
        out.keyframe_request = self.pacer.frame(pts, keyframe);
        if keyframe {
            match self.configure(annexb) {
                Ok(Some(config)) => out.inputs.push(config),
                Ok(None) => {}
                Err(e) => {
                    self.waiting_for_keyframe = true;
                    self.pacer.urgent();
                    out.dropped = Some(Dropped::Malformed(e.to_string()));
                    return out;
                }
            }
        }
        if self.waiting_for_keyframe && !(keyframe && self.record.is_some()) {
            out.dropped = Some(Dropped::WaitingForKeyframe);
            return out;
        }
        let mut data = Vec::with_capacity(annexb.len() + 16);
        if let Err(e) = h264::annexb_to_avcc(annexb, &mut data) {
            self.waiting_for_keyframe = true;
            self.pacer.urgent();
            out.dropped = Some(Dropped::Malformed(e.to_string()));
            return out;
        }
        if data.is_empty() {
            // Parameter sets alone: nothing to show.
            return out;
        }
        self.waiting_for_keyframe = false;
        let dts = match self.last_dts {
            Some(last) if pts <= last => last.saturating_add(1),
            _ => pts,
        };
        self.last_dts = Some(dts);
        out.inputs.push(MediaInput::Video {
            dts_ms: dts,
            cts_ms: 0,
            keyframe,
            data: Bytes::from(data),
        });
        out
    }

    /// The configuration record of a keyframe's parameter sets, if they changed; `None`
    /// when they did not or the keyframe carries none (the last ones stay in force).
    fn configure(&mut self, annexb: &[u8]) -> Result<Option<MediaInput>, ContainerError> {
        let has_sets = h264::annexb_nals(annexb)
            .any(|nal| matches!(h264::nal_type(nal), Some(h264::NAL_SPS | h264::NAL_PPS)));
        if !has_sets {
            return Ok(None);
        }
        let record = Bytes::from(AvcConfig::from_annexb(annexb)?.record()?);
        if self.record.as_ref() == Some(&record) {
            return Ok(None);
        }
        self.record = Some(record.clone());
        Ok(Some(MediaInput::VideoConfig {
            codec: VideoCodec::H264,
            config: record,
        }))
    }

    /// One Opus packet at RTP time `ticks` (at `rate` Hz, 48 kHz for Opus), arrived at
    /// `arrival`.
    pub fn audio(&mut self, ticks: u64, rate: u32, arrival: Instant, packet: &[u8]) -> Converted {
        if self.audio.is_none() {
            let anchor = self.anchor(arrival);
            self.audio = Some(TrackClock::new(ticks, anchor, rate));
        }
        let pts = self.audio.map_or(0, |c| c.ms(ticks));
        let mut out = Converted::default();
        if self.last_audio.is_some_and(|last| pts <= last) || packet.is_empty() {
            out.dropped = Some(Dropped::Late);
            return out;
        }
        self.last_audio = Some(pts);
        if !self.opus_announced {
            self.opus_announced = true;
            out.inputs.push(MediaInput::AudioConfig {
                codec: AudioCodec::Opus,
                config: Bytes::from_static(&OPUS_HEAD),
            });
        }
        out.inputs.push(MediaInput::Audio {
            codec: AudioCodec::Opus,
            pts_ms: pts,
            data: Bytes::copy_from_slice(packet),
        });
        out
    }
}

/// The OpusHead (RFC 7845 §5.1) of WebRTC's Opus: version 1, two channels (RFC 7587 always
/// signals `opus/48000/2`; a mono sender's packets decode as stereo), no pre-skip (RTP
/// carries none), 48 kHz, no gain, mapping family 0.
const OPUS_HEAD: [u8; 19] = [
    b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0, 0, 0x80, 0xBB, 0, 0, 0, 0, 0,
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The SPS (Constrained Baseline, 320x240) and PPS x264 wrote for one test frame.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xdc, 0x14, 0x1f, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
        0x00, 0x03, 0x00, 0x3c, 0x0f, 0x14, 0x2b, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xce, 0x0f, 0x2c, 0x80];

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out
    }

    fn idr() -> Vec<u8> {
        annexb(&[SPS, PPS, &[0x65, 0x88, 0x84, 0x00]])
    }

    fn inter() -> Vec<u8> {
        annexb(&[&[0x41, 0x9a, 0x02]])
    }

    #[test]
    fn video_waits_for_a_keyframe_with_parameter_sets_then_flows() {
        let t0 = Instant::now();
        let mut c = Converter::new(Duration::from_secs(2));
        let first = c.video(1000, t0, true, &inter());
        assert_eq!(first.dropped, Some(Dropped::WaitingForKeyframe));
        assert_eq!(first.keyframe_request, Some(KeyframeRequest::Pli));
        let key = c.video(1000 + 3000, t0, true, &idr());
        assert!(key.dropped.is_none());
        assert!(matches!(
            key.inputs.as_slice(),
            [
                MediaInput::VideoConfig {
                    codec: VideoCodec::H264,
                    ..
                },
                MediaInput::Video {
                    keyframe: true,
                    dts_ms: 33,
                    ..
                }
            ]
        ));
        let next = c.video(1000 + 6000, t0, true, &inter());
        assert!(
            matches!(next.inputs.as_slice(), [MediaInput::Video { keyframe: false, dts_ms: 66, data, .. }] if data[..4] == [0, 0, 0, 3])
        );
        // The same parameter sets again: no new configuration.
        let again = c.video(1000 + 9000, t0, true, &idr());
        assert!(matches!(
            again.inputs.as_slice(),
            [MediaInput::Video { keyframe: true, .. }]
        ));
        // A loss: dropped until the next keyframe.
        let lost = c.video(1000 + 12000, t0, false, &inter());
        assert_eq!(lost.dropped, Some(Dropped::WaitingForKeyframe));
        let back = c.video(1000 + 15000, t0, true, &idr());
        assert!(back.dropped.is_none());
    }

    #[test]
    fn malformed_parameter_sets_are_dropped_not_forwarded() {
        let t0 = Instant::now();
        let mut c = Converter::new(Duration::from_secs(2));
        let bad = annexb(&[&[0x67], PPS, &[0x65, 0x88]]);
        let out = c.video(0, t0, true, &bad);
        assert!(matches!(out.dropped, Some(Dropped::Malformed(_))));
        assert!(out.inputs.is_empty());
    }

    #[test]
    fn audio_is_announced_once_and_late_packets_dropped() {
        let t0 = Instant::now();
        let mut c = Converter::new(Duration::from_secs(2));
        let first = c.audio(480_000, 48_000, t0 + Duration::from_millis(40), &[0xfc, 1]);
        assert!(matches!(
            first.inputs.as_slice(),
            [
                MediaInput::AudioConfig {
                    codec: AudioCodec::Opus,
                    ..
                },
                MediaInput::Audio { pts_ms: 0, .. }
            ]
        ));
        let next = c.audio(480_960, 48_000, t0, &[0xfc, 2]);
        assert!(matches!(
            next.inputs.as_slice(),
            [MediaInput::Audio { pts_ms: 20, .. }]
        ));
        assert_eq!(
            c.audio(480_000, 48_000, t0, &[0xfc]).dropped,
            Some(Dropped::Late)
        );
        // Video that starts later is placed at its arrival on the same clock.
        let v = c.video(7, t0 + Duration::from_millis(100), true, &idr());
        assert!(matches!(
            v.inputs.last(),
            Some(MediaInput::Video { dts_ms: 60, .. })
        ));
    }

    #[test]
    fn the_pacer_asks_at_the_target_and_retries() {
        let mut p = KeyframePacer::new(Duration::from_secs(2), Duration::from_millis(33));
        assert_eq!(p.frame(0, true), None);
        assert_eq!(p.frame(1000, false), None);
        assert_eq!(p.frame(1967, false), Some(KeyframeRequest::Pli));
        assert_eq!(p.frame(2000, false), None);
        assert_eq!(p.frame(2467, false), Some(KeyframeRequest::Pli));
        assert_eq!(p.frame(2967, false), Some(KeyframeRequest::Pli));
        assert_eq!(p.frame(3467, false), Some(KeyframeRequest::Fir));
        assert_eq!(p.frame(3500, true), None);
        assert_eq!(p.frame(3533, false), None);
        p.urgent();
        assert_eq!(p.frame(3566, false), Some(KeyframeRequest::Pli));
    }

    proptest! {
        /// A track's clock is exact at whole milliseconds, never goes back, and never
        /// panics, whatever the timestamps.
        #[test]
        fn track_clock_is_monotonic_and_exact(
            first in any::<u64>(),
            anchor in -1_000_000i64..1_000_000,
            steps in proptest::collection::vec(0u64..100_000, 1..50),
            rate in prop_oneof![Just(90_000u32), Just(48_000), 1u32..200_000],
        ) {
            let clock = TrackClock::new(first, anchor, rate);
            prop_assert_eq!(clock.ms(first), anchor);
            let mut ticks = first;
            let mut last = clock.ms(ticks);
            for step in steps {
                ticks = ticks.saturating_add(step);
                let ms = clock.ms(ticks);
                prop_assert!(ms >= last);
                last = ms;
            }
            let whole = u64::from(rate) * 3;
            if let Some(later) = first.checked_add(whole) {
                prop_assert_eq!(clock.ms(later), anchor + 3000);
            }
            let _ = clock.ms(0);
            let _ = clock.ms(u64::MAX);
        }

        /// Decode times handed to the pipeline strictly increase, whatever order and
        /// spacing the timestamps come in.
        #[test]
        fn video_decode_times_increase(
            ticks in proptest::collection::vec(0u64..1_000_000, 1..60),
            keys in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let t0 = Instant::now();
            let mut c = Converter::new(Duration::from_secs(2));
            let mut last = None;
            for (i, t) in ticks.into_iter().enumerate() {
                let au = if keys[i] { idr() } else { inter() };
                for input in c.video(t, t0, true, &au).inputs {
                    if let MediaInput::Video { dts_ms, .. } = input {
                        prop_assert!(last.is_none_or(|l| dts_ms > l));
                        last = Some(dts_ms);
                    }
                }
            }
        }

        /// With a publisher that answers every request with the next frame, keyframes are
        /// never further apart than the target plus a retry, and requests never closer
        /// than the retry interval.
        #[test]
        fn pacer_keeps_keyframes_near_the_target(
            frame_ms in 10i64..100,
            answer_after in 0usize..3,
            frames in 100usize..600,
        ) {
            let target = Duration::from_secs(2);
            let mut p = KeyframePacer::new(target, Duration::from_millis(frame_ms as u64));
            let mut last_key = None;
            let mut last_request: Option<i64> = None;
            let mut pending: Option<usize> = None;
            for i in 0..frames {
                let t = i as i64 * frame_ms;
                let key = pending == Some(0) || i == 0;
                pending = pending.and_then(|n| n.checked_sub(1));
                if key {
                    if let Some(k) = last_key {
                        prop_assert!(t - k <= 2000 + 500 + frame_ms * (answer_after as i64 + 2));
                    }
                    last_key = Some(t);
                    pending = None;
                }
                if p.frame(t, key).is_some() {
                    if let Some(r) = last_request {
                        prop_assert!(t - r >= 500);
                    }
                    last_request = Some(t);
                    pending.get_or_insert(answer_after);
                }
            }
        }
    }
}
