//! What to publish and where: [`SourceConfig`] and its validation.

use std::time::Duration;

use crate::{redact_output, SourceError};

/// Audio sample rate of the tone, fixed: 48 kHz is what OBS and the ingest ladder use.
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;

/// Samples per AAC frame (the native encoder's fixed frame size).
pub const AUDIO_FRAME_SAMPLES: usize = 1024;

/// One publish: the output, the picture and sound, and how long and how fast.
///
/// `Debug` shows `output` through [`redact_output`], so logging a config never
/// leaks the stream key.
#[derive(Clone, PartialEq)]
pub struct SourceConfig {
    /// `rtmp://host:port/app/key` publishes over RTMP; anything else is a file path
    /// that receives an FLV file (benchmark fixtures).
    pub output: String,
    /// Picture width in pixels; even, because yuv420p halves it for chroma.
    pub width: u32,
    /// Picture height in pixels; even, for the same reason.
    pub height: u32,
    /// Frames per second; with `gop_seconds` it fixes the keyframe interval.
    pub fps: u32,
    /// Video target and VBV cap, so the ingest sees a CBR-ish stream like OBS sends.
    pub video_bitrate_kbps: u32,
    /// AAC bitrate.
    pub audio_bitrate_kbps: u32,
    /// Seconds between keyframes; `gop_seconds * fps` must be a whole number of frames
    /// so keyframes land exactly where the ingest cuts segments.
    pub gop_seconds: f64,
    /// Frequency of the sine tone.
    pub tone_hz: f64,
    /// Stop after this much media time; `None` runs until the stop flag is set.
    pub duration: Option<Duration>,
    /// Pace output to the wall clock (a live publisher); `false` encodes as fast as
    /// possible, for making fixtures.
    pub realtime: bool,
    /// Encode as a streamer who wants low latency sets x264 (OBS's `zerolatency` tune): no
    /// B-frames, no lookahead, slice threads, so the encoder holds back no frames. Off, the
    /// encoder is OBS's default (`veryfast` with B-frames and a lookahead), which delays
    /// every frame by about half a second before it leaves the publisher.
    pub low_latency: bool,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("output", &redact_output(&self.output))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("video_bitrate_kbps", &self.video_bitrate_kbps)
            .field("audio_bitrate_kbps", &self.audio_bitrate_kbps)
            .field("gop_seconds", &self.gop_seconds)
            .field("tone_hz", &self.tone_hz)
            .field("duration", &self.duration)
            .field("realtime", &self.realtime)
            .field("low_latency", &self.low_latency)
            .finish()
    }
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            output: String::new(),
            width: 1280,
            height: 720,
            fps: 30,
            video_bitrate_kbps: 2500,
            audio_bitrate_kbps: 128,
            gop_seconds: 2.0,
            tone_hz: 1000.0,
            duration: None,
            realtime: true,
            low_latency: false,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SourceError {
    SourceError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

fn check_dimension(field: &'static str, value: u32, max: u32) -> Result<(), SourceError> {
    // The clock overlay needs room, and x264 needs even sizes for 4:2:0.
    const MIN: u32 = 64;
    if !(MIN..=max).contains(&value) {
        return Err(invalid(
            field,
            format!("must be between {MIN} and {max} pixels, got {value}"),
        ));
    }
    if !value.is_multiple_of(2) {
        return Err(invalid(
            field,
            format!("must be even (yuv420p halves it for chroma), got {value}"),
        ));
    }
    Ok(())
}

impl SourceConfig {
    /// Checks every field against what the encoders and the overlay can do, so a bad
    /// value fails here with the field's name instead of deep inside FFmpeg.
    pub fn validate(&self) -> Result<(), SourceError> {
        if self.output.trim().is_empty() {
            return Err(invalid(
                "output",
                "is empty; give an rtmp:// or srt:// URL or a file path",
            ));
        }
        if self.output.contains('\0') {
            return Err(invalid("output", "contains a NUL byte"));
        }
        check_dimension("width", self.width, 7680)?;
        check_dimension("height", self.height, 4320)?;
        if !(1..=240).contains(&self.fps) {
            return Err(invalid(
                "fps",
                format!("must be between 1 and 240, got {}", self.fps),
            ));
        }
        if !(50..=100_000).contains(&self.video_bitrate_kbps) {
            return Err(invalid(
                "video_bitrate_kbps",
                format!(
                    "must be between 50 and 100000 kb/s, got {}",
                    self.video_bitrate_kbps
                ),
            ));
        }
        if !(16..=512).contains(&self.audio_bitrate_kbps) {
            return Err(invalid(
                "audio_bitrate_kbps",
                format!(
                    "must be between 16 and 512 kb/s, got {}",
                    self.audio_bitrate_kbps
                ),
            ));
        }
        self.gop_frames()?;
        let nyquist = f64::from(AUDIO_SAMPLE_RATE) / 2.0;
        if !(self.tone_hz.is_finite() && self.tone_hz >= 20.0 && self.tone_hz < nyquist) {
            return Err(invalid(
                "tone_hz",
                format!(
                    "must be at least 20 Hz and below {nyquist} Hz, got {}",
                    self.tone_hz
                ),
            ));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                "duration",
                "must be more than zero; leave it unset to run until stopped",
            ));
        }
        Ok(())
    }

    /// Frames between keyframes: `gop_seconds * fps`, which must be a whole number
    /// (within 1e-6) between 1 and 20 seconds' worth.
    pub fn gop_frames(&self) -> Result<u32, SourceError> {
        let frames = self.gop_seconds * f64::from(self.fps);
        if !(self.gop_seconds.is_finite() && self.gop_seconds > 0.0 && self.gop_seconds <= 20.0) {
            return Err(invalid(
                "gop_seconds",
                format!("must be above 0 and at most 20, got {}", self.gop_seconds),
            ));
        }
        let whole = frames.round();
        if whole < 1.0 || (frames - whole).abs() > 1e-6 {
            return Err(invalid(
                "gop_seconds",
                format!(
                    "times fps ({}) must be a whole number of frames, got {frames}",
                    self.fps
                ),
            ));
        }
        // In range: at most 20 s * 240 fps = 4800.
        Ok(whole as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SourceConfig {
        SourceConfig {
            output: "out.flv".into(),
            ..SourceConfig::default()
        }
    }

    fn rejected_field(config: &SourceConfig) -> (&'static str, String) {
        match config.validate() {
            Err(err @ SourceError::InvalidConfig { field, .. }) => (field, err.to_string()),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn default_with_output_is_valid() {
        valid().validate().expect("default config is valid");
        assert_eq!(valid().gop_frames().ok(), Some(60));
    }

    #[test]
    fn odd_sizes_are_rejected_naming_the_field() {
        let (field, msg) = rejected_field(&SourceConfig {
            width: 321,
            ..valid()
        });
        assert_eq!(field, "width");
        assert!(msg.contains("`width`") && msg.contains("even"), "{msg}");

        let (field, msg) = rejected_field(&SourceConfig {
            height: 239,
            ..valid()
        });
        assert_eq!(field, "height");
        assert!(msg.contains("`height`") && msg.contains("239"), "{msg}");
    }

    #[test]
    fn zero_fps_is_rejected_naming_the_field() {
        let (field, msg) = rejected_field(&SourceConfig { fps: 0, ..valid() });
        assert_eq!(field, "fps");
        assert!(msg.contains("`fps`"), "{msg}");
    }

    #[test]
    fn other_ranges_are_checked() {
        let cases = [
            (
                SourceConfig {
                    output: String::new(),
                    ..valid()
                },
                "output",
            ),
            (
                SourceConfig {
                    width: 0,
                    ..valid()
                },
                "width",
            ),
            (
                SourceConfig {
                    video_bitrate_kbps: 0,
                    ..valid()
                },
                "video_bitrate_kbps",
            ),
            (
                SourceConfig {
                    audio_bitrate_kbps: 0,
                    ..valid()
                },
                "audio_bitrate_kbps",
            ),
            (
                SourceConfig {
                    gop_seconds: 0.0,
                    ..valid()
                },
                "gop_seconds",
            ),
            (
                SourceConfig {
                    gop_seconds: f64::NAN,
                    ..valid()
                },
                "gop_seconds",
            ),
            (
                // 30 fps * 0.45 s = 13.5 frames: keyframes could not be exact.
                SourceConfig {
                    gop_seconds: 0.45,
                    ..valid()
                },
                "gop_seconds",
            ),
            (
                SourceConfig {
                    tone_hz: 30_000.0,
                    ..valid()
                },
                "tone_hz",
            ),
            (
                SourceConfig {
                    duration: Some(Duration::ZERO),
                    ..valid()
                },
                "duration",
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(rejected_field(&config).0, expected, "{config:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_stream_key() {
        let config = SourceConfig {
            output: "rtmp://ingest:1935/live/sk_secret".into(),
            ..valid()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk_secret"), "{shown}");
        assert!(shown.contains("rtmp://ingest:1935/live/<key>"), "{shown}");
    }

    #[test]
    fn fractional_gop_that_is_whole_in_frames_is_fine() {
        let config = SourceConfig {
            fps: 30,
            gop_seconds: 0.5,
            ..valid()
        };
        assert_eq!(config.gop_frames().ok(), Some(15));
        let config = SourceConfig {
            fps: 25,
            gop_seconds: 1.2,
            ..valid()
        };
        assert_eq!(config.gop_frames().ok(), Some(30));
    }
}
