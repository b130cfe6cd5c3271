//! Cuts one rung's packets into segments, sans-IO.
//!
//! Boundaries are planned once per stream (see [`crate::pipeline`]) and arrive here as a
//! `cut` on the keyframe that starts a segment, so every rung cuts at the same presentation
//! time. Audio is shared by all rungs but reaches each one at a different moment (an
//! encoded rung's video lags its audio by the encoder's delay; the source rung's audio
//! interleaves with its video), so audio frames wait in a queue and are given to a segment
//! only when that segment closes: every frame with `start <= pts < end` goes to it. A
//! segment closes once audio past its end has been seen (or the stream has no audio, or
//! audio has stalled for a second of video), which makes the audio split identical on every
//! rung.

use std::collections::VecDeque;

use bytes::Bytes;

/// How far video may run past a boundary before a segment closes without audio past it.
const AUDIO_STALL_MS: i64 = 1000;
/// Audio kept waiting for video at most; older frames are dropped (video has stalled).
const MAX_QUEUED_AUDIO_MS: i64 = 30_000;

/// One encoded video access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPacket {
    /// Presentation time in milliseconds.
    pub pts_ms: i64,
    /// Decode time in milliseconds.
    pub dts_ms: i64,
    /// Whether it is an IDR picture.
    pub keyframe: bool,
    /// Annex B bytes.
    pub data: Bytes,
}

/// One encoded audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Presentation time in milliseconds.
    pub pts_ms: i64,
    /// ADTS frame bytes.
    pub data: Bytes,
}

/// A segment's packets, ready to be muxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSegment {
    /// Media sequence number, as planned.
    pub sequence: u64,
    /// Presentation time of the boundary that opened it.
    pub start_pts_ms: i64,
    /// Presentation time of the boundary that closed it (or the end of the stream).
    pub end_pts_ms: i64,
    /// Video in decode order, starting with the boundary keyframe.
    pub video: Vec<VideoPacket>,
    /// Audio with `start <= pts < end`, in order.
    pub audio: Vec<AudioFrame>,
}

#[derive(Debug)]
struct Open {
    sequence: u64,
    start_pts_ms: i64,
    video: Vec<VideoPacket>,
}

#[derive(Debug)]
struct Closing {
    open: Open,
    end_pts_ms: i64,
}

/// Segments one rung.
#[derive(Debug)]
pub struct RungSegmenter {
    has_audio: bool,
    current: Option<Open>,
    /// Segments whose end is known, waiting for the audio up to their end.
    closing: VecDeque<Closing>,
    audio: VecDeque<AudioFrame>,
    /// Highest video decode time seen: tells when audio has stalled.
    video_dts_ms: i64,
    /// Highest audio pts seen: tells when every frame before a boundary has arrived.
    audio_pts_ms: Option<i64>,
}

impl RungSegmenter {
    /// A segmenter for a rung whose stream does (`has_audio`) or does not carry audio.
    pub fn new(has_audio: bool) -> Self {
        RungSegmenter {
            has_audio,
            current: None,
            closing: VecDeque::new(),
            audio: VecDeque::new(),
            video_dts_ms: i64::MIN,
            audio_pts_ms: None,
        }
    }

    /// Takes a video packet; `cut` is the sequence number of the segment it starts, if it is
    /// a planned boundary. Video before the first boundary is dropped (it cannot be decoded
    /// on its own).
    pub fn push_video(&mut self, packet: VideoPacket, cut: Option<u64>) -> Vec<ClosedSegment> {
        let mut out = Vec::new();
        self.video_dts_ms = self.video_dts_ms.max(packet.dts_ms);
        if let Some(sequence) = cut {
            let boundary = packet.pts_ms;
            match self.current.take() {
                Some(open) => self.closing.push_back(Closing {
                    open,
                    end_pts_ms: boundary,
                }),
                None => self.audio.retain(|a| a.pts_ms >= boundary),
            }
            self.current = Some(Open {
                sequence,
                start_pts_ms: boundary,
                video: vec![packet],
            });
        } else if let Some(open) = self.current.as_mut() {
            open.video.push(packet);
        }
        self.poll(&mut out);
        out
    }

    /// Takes an audio frame.
    pub fn push_audio(&mut self, frame: AudioFrame) -> Vec<ClosedSegment> {
        let mut out = Vec::new();
        self.audio_pts_ms = Some(
            self.audio_pts_ms
                .map_or(frame.pts_ms, |p| p.max(frame.pts_ms)),
        );
        self.audio.push_back(frame);
        while let (Some(front), Some(back)) = (self.audio.front(), self.audio.back()) {
            if back.pts_ms - front.pts_ms <= MAX_QUEUED_AUDIO_MS {
                break;
            }
            self.audio.pop_front();
        }
        self.poll(&mut out);
        out
    }

    /// Ends the rung at `end_pts_ms` (the end of the last frame): closes what is open.
    pub fn finish(&mut self, end_pts_ms: i64) -> Vec<ClosedSegment> {
        let mut out = Vec::new();
        while let Some(closing) = self.closing.pop_front() {
            out.push(self.close(closing));
        }
        if let Some(open) = self.current.take() {
            let end = end_pts_ms.max(open.start_pts_ms + 1);
            out.push(self.close(Closing {
                open,
                end_pts_ms: end,
            }));
        }
        self.audio.clear();
        out
    }

    fn poll(&mut self, out: &mut Vec<ClosedSegment>) {
        while let Some(closing) = self.closing.front() {
            let end = closing.end_pts_ms;
            let audio_complete = !self.has_audio
                || self.audio_pts_ms.is_some_and(|p| p >= end)
                || self.video_dts_ms >= end.saturating_add(AUDIO_STALL_MS);
            if !audio_complete {
                return;
            }
            if let Some(closing) = self.closing.pop_front() {
                out.push(self.close(closing));
            }
        }
    }

    fn close(&mut self, closing: Closing) -> ClosedSegment {
        let start = closing.open.start_pts_ms;
        let end = closing.end_pts_ms;
        // Frames older than the segment belong to one already sent: too late, drop them.
        while self.audio.front().is_some_and(|a| a.pts_ms < start) {
            self.audio.pop_front();
        }
        let mut audio = Vec::new();
        while self.audio.front().is_some_and(|a| a.pts_ms < end) {
            if let Some(frame) = self.audio.pop_front() {
                audio.push(frame);
            }
        }
        ClosedSegment {
            sequence: closing.open.sequence,
            start_pts_ms: start,
            end_pts_ms: end,
            video: closing.open.video,
            audio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn video(pts: i64, key: bool) -> VideoPacket {
        VideoPacket {
            pts_ms: pts,
            dts_ms: pts,
            keyframe: key,
            data: Bytes::new(),
        }
    }

    fn audio(pts: i64) -> AudioFrame {
        AudioFrame {
            pts_ms: pts,
            data: Bytes::new(),
        }
    }

    /// Feeds a 30 fps video with a keyframe every `gop` frames and 21.33 ms audio frames,
    /// the audio arriving `audio_lead_ms` ahead of the video it goes with.
    fn run(frames: i64, gop: i64, audio_lead_ms: i64, with_audio: bool) -> Vec<ClosedSegment> {
        let mut seg = RungSegmenter::new(with_audio);
        let mut out = Vec::new();
        // (arrival, is_video, pts, frame number)
        let mut events: Vec<(i64, bool, i64, i64)> = Vec::new();
        for f in 0..frames {
            events.push((f * 100 / 3, true, f * 100 / 3, f));
        }
        if with_audio {
            let mut a = 0;
            while a * 64 / 3 < frames * 100 / 3 {
                let pts = a * 64 / 3;
                events.push((pts - audio_lead_ms, false, pts, 0));
                a += 1;
            }
        }
        events.sort_by_key(|e| (e.0, !e.1));
        let mut seq = 0;
        for (_, is_video, pts, frame) in events {
            if is_video {
                let key = frame % gop == 0;
                let cut = key.then(|| {
                    seq += 1;
                    seq - 1
                });
                out.extend(seg.push_video(video(pts, key), cut));
            } else {
                out.extend(seg.push_audio(audio(pts)));
            }
        }
        out.extend(seg.finish(frames * 100 / 3));
        out
    }

    #[test]
    fn cuts_at_every_planned_boundary() {
        let segs = run(180, 60, 0, true);
        assert_eq!(segs.len(), 3);
        assert_eq!(
            segs.iter().map(|s| s.sequence).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(segs[0].start_pts_ms, 0);
        assert_eq!(segs[0].end_pts_ms, 2000);
        assert!(segs.iter().all(|s| s.video.len() == 60));
    }

    #[test]
    fn audio_split_does_not_depend_on_when_audio_arrives() {
        let a = run(300, 60, 0, true);
        let b = run(300, 60, 700, true);
        let c = run(300, 60, -200, true);
        let split = |segs: &[ClosedSegment]| {
            segs.iter()
                .map(|s| s.audio.iter().map(|f| f.pts_ms).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(split(&a), split(&b));
        assert_eq!(split(&a), split(&c));
    }

    #[test]
    fn video_only_streams_close_on_the_boundary() {
        let mut seg = RungSegmenter::new(false);
        assert!(seg.push_video(video(0, true), Some(5)).is_empty());
        let closed = seg.push_video(video(2000, true), Some(6));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].sequence, 5);
    }

    #[test]
    fn video_before_the_first_boundary_is_dropped() {
        let mut seg = RungSegmenter::new(false);
        assert!(seg.push_video(video(0, false), None).is_empty());
        seg.push_video(video(33, true), Some(0));
        let closed = seg.finish(66);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].video.len(), 1);
        assert_eq!(closed[0].start_pts_ms, 33);
    }

    proptest! {
        #[test]
        fn every_frame_lands_once_in_the_segment_covering_it(
            frames in 1i64..400,
            gop in 1i64..120,
            lead in -500i64..1500,
        ) {
            let segs = run(frames, gop, lead, true);
            let total_video: usize = segs.iter().map(|s| s.video.len()).sum();
            prop_assert_eq!(total_video as i64, frames);
            let mut last_end = None;
            for (i, s) in segs.iter().enumerate() {
                prop_assert_eq!(s.sequence, i as u64);
                prop_assert!(s.start_pts_ms < s.end_pts_ms);
                if let Some(end) = last_end {
                    prop_assert_eq!(s.start_pts_ms, end);
                }
                last_end = Some(s.end_pts_ms);
                prop_assert!(s.video[0].keyframe);
                for a in &s.audio {
                    prop_assert!(s.start_pts_ms <= a.pts_ms && a.pts_ms < s.end_pts_ms);
                }
                prop_assert!(s.audio.windows(2).all(|w| w[0].pts_ms < w[1].pts_ms));
            }
            // No audio frame inside the covered range is lost.
            let covered_end = last_end.unwrap_or(0);
            let expected = (0..).map(|a: i64| a * 64 / 3).take_while(|p| *p < covered_end.min(frames * 100 / 3)).count();
            let got: usize = segs.iter().map(|s| s.audio.len()).sum();
            prop_assert_eq!(got, expected);
        }
    }
}
