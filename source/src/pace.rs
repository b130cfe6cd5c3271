//! When each frame is due: the media timeline both streams are paced against.
//!
//! Due times are computed from frame counters, never accumulated, so real-time pacing
//! cannot drift however long the stream runs.

use std::time::Duration;

/// Which stream's frame comes next on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Video,
    Audio,
}

/// The media timeline of one publish: video frames at `fps`, audio frames of
/// `frame_samples` samples at `sample_rate`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    fps: u32,
    sample_rate: u32,
    frame_samples: u32,
}

impl Timeline {
    pub(crate) fn new(fps: u32, sample_rate: u32, frame_samples: u32) -> Self {
        Self {
            fps,
            sample_rate,
            frame_samples,
        }
    }

    /// Media time of video frame `n` (floor to the nanosecond).
    pub(crate) fn video_due(&self, n: u64) -> Duration {
        nanos(u128::from(n) * 1_000_000_000 / u128::from(self.fps))
    }

    /// Media time of audio frame `k`.
    pub(crate) fn audio_due(&self, k: u64) -> Duration {
        nanos(
            u128::from(k) * u128::from(self.frame_samples) * 1_000_000_000
                / u128::from(self.sample_rate),
        )
    }

    /// The earlier of video frame `video` and audio frame `audio`, and its media time;
    /// video wins a tie. Compared exactly, not on rounded nanoseconds.
    pub(crate) fn next(&self, video: u64, audio: u64) -> (Stream, Duration) {
        // video / fps <= audio * frame_samples / sample_rate
        let v = u128::from(video) * u128::from(self.sample_rate);
        let a = u128::from(audio) * u128::from(self.frame_samples) * u128::from(self.fps);
        if v <= a {
            (Stream::Video, self.video_due(video))
        } else {
            (Stream::Audio, self.audio_due(audio))
        }
    }
}

fn nanos(n: u128) -> Duration {
    // A u64 of nanoseconds is 584 years of stream.
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_do_not_drift() {
        let t = Timeline::new(30, 48_000, 1024);
        assert_eq!(t.video_due(30), Duration::from_secs(1));
        assert_eq!(t.video_due(30 * 3600 * 24), Duration::from_secs(86_400));
        assert_eq!(t.audio_due(375), Duration::from_secs(8));
        assert_eq!(t.video_due(1), Duration::from_nanos(33_333_333));
    }

    #[test]
    fn streams_interleave_in_time_order() {
        let t = Timeline::new(30, 48_000, 1024);
        let (mut v, mut a) = (0, 0);
        let mut last = Duration::ZERO;
        let mut order = Vec::new();
        while v < 60 || a < 94 {
            let (stream, due) = t.next(v, a);
            assert!(due >= last, "time went backwards at v={v} a={a}");
            last = due;
            match stream {
                Stream::Video => v += 1,
                Stream::Audio => a += 1,
            }
            order.push(stream);
        }
        // Both start at zero, video first.
        assert_eq!(order[..2], [Stream::Video, Stream::Audio]);
        // 2 s: 60 video frames, 93.75 audio frames' worth.
        assert!(t.audio_due(94) > Duration::from_secs(2));
        assert!(t.audio_due(93) < Duration::from_secs(2));
    }
}
