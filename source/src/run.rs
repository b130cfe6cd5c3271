//! The publish loop: pull a pattern frame, burn the clock in, make the tone, encode,
//! mux, and keep to the wall clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use domain::time::WallClock;
use ffmpeg_next::frame;

use crate::clock::{frame_label, time_of_day_utc, ClockOverlay, PlaneMut};
use crate::config::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE};
use crate::pace::{Stream, Timeline};
use crate::pattern::Pattern;
use crate::publish::{audio_frame, Publisher};
use crate::stamp::ClockStamp;
use crate::tone::Tone;
use crate::{redact_output, SourceConfig, SourceError};

/// Longest single sleep, so a stop request is noticed promptly even at low fps.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How far behind the wall clock a real-time publish may fall before it says so.
const LATE_WARNING: Duration = Duration::from_secs(1);

/// What a finished publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceStats {
    /// Pictures sent to the video encoder.
    pub video_frames: u64,
    /// 1024-sample audio blocks sent to the AAC encoder.
    pub audio_frames: u64,
    /// Encoded bytes handed to the muxer (audio + video payload; FLV and RTMP
    /// framing not counted).
    pub bytes_out: u64,
    /// Wall time from the first frame to the written trailer (connecting and
    /// encoder setup not included).
    pub elapsed: Duration,
}

/// Publishes the test pattern until `config.duration` of media has been sent or `stop`
/// is set, then flushes the encoders and writes the trailer (for RTMP, the peer sees
/// a normal unpublish).
///
/// Blocking and CPU-heavy: run it on a dedicated thread, never on an async executor.
/// `stop` is polled at least every 50 ms; a write that blocks inside FFmpeg (a stalled
/// RTMP peer) is not interruptible by it.
pub fn run(config: &SourceConfig, stop: &AtomicBool) -> Result<SourceStats, SourceError> {
    config.validate()?;
    crate::init()?;
    tracing::info!(
        output = %redact_output(&config.output),
        width = config.width,
        height = config.height,
        fps = config.fps,
        video_kbps = config.video_bitrate_kbps,
        audio_kbps = config.audio_bitrate_kbps,
        gop_frames = config.gop_frames()?,
        realtime = config.realtime,
        duration = ?config.duration,
        "publishing test pattern"
    );

    let mut pattern = Pattern::new(config.width, config.height, config.fps)?;
    let mut publisher = Publisher::open(config)?;
    let overlay = ClockOverlay::new(config.width, config.height);
    let stamp = ClockStamp::new(config.width, config.height);
    let timeline = Timeline::new(config.fps, AUDIO_SAMPLE_RATE, AUDIO_FRAME_SAMPLES as u32);
    let mut tone = Tone::new(config.tone_hz, AUDIO_SAMPLE_RATE);
    let mut samples = vec![0.0f32; AUDIO_FRAME_SAMPLES];
    let (mut video, mut audio) = (0u64, 0u64);
    let mut late = false;

    // Pacing starts after the connect and header, so the first frames are not a burst.
    let started = Instant::now();
    let reason = loop {
        if stop.load(Ordering::Relaxed) {
            break "stop requested";
        }
        let (stream, due) = timeline.next(video, audio);
        if config.duration.is_some_and(|d| due >= d) {
            break "duration reached";
        }
        if config.realtime {
            let deadline = started + due;
            if !sleep_until(deadline, stop) {
                break "stop requested";
            }
            let behind = Instant::now().saturating_duration_since(deadline);
            if behind > LATE_WARNING && !late {
                tracing::warn!(?behind, "encoding is slower than real time");
            }
            late = behind > LATE_WARNING;
        }
        match stream {
            Stream::Video => {
                let mut frame = pattern.next_frame()?;
                burn_in_clock(&overlay, &stamp, &mut frame, video);
                publisher.send_video(&mut frame, pts(video))?;
                video += 1;
            }
            Stream::Audio => {
                tone.fill(&mut samples);
                let mut frame = audio_frame();
                for plane in 0..frame.planes() {
                    frame.plane_mut::<f32>(plane).copy_from_slice(&samples);
                }
                publisher.send_audio(&mut frame, pts(audio * AUDIO_FRAME_SAMPLES as u64))?;
                audio += 1;
            }
        }
    };

    let payload = publisher.bytes_out();
    tracing::debug!(reason, payload, "flushing encoders");
    let bytes_out = publisher.finish()?;
    let stats = SourceStats {
        video_frames: video,
        audio_frames: audio,
        bytes_out,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        reason,
        video_frames = stats.video_frames,
        audio_frames = stats.audio_frames,
        bytes_out = stats.bytes_out,
        elapsed = ?stats.elapsed,
        "test pattern stopped"
    );
    Ok(stats)
}

fn pts(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sleeps until `deadline`; `false` if `stop` was set first.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(STOP_POLL));
    }
}

/// Draws the current UTC time and the frame number, and the machine-readable time, onto
/// a yuv420p frame.
fn burn_in_clock(
    overlay: &ClockOverlay,
    stamp: &ClockStamp,
    frame: &mut frame::Video,
    number: u64,
) {
    let now = WallClock.since_epoch();
    let unix_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let time = time_of_day_utc(now);
    let label = frame_label(number);
    for plane in 0..frame.planes().min(3) {
        let stride = frame.stride(plane);
        let width = frame.plane_width(plane) as usize;
        let height = frame.plane_height(plane) as usize;
        let Some(mut view) = PlaneMut::new(frame.data_mut(plane), stride, width, height) else {
            // Cannot happen for FFmpeg-allocated frames; skip rather than fail a stream.
            continue;
        };
        if plane == 0 {
            overlay.draw_luma(&mut view, &time, &label);
            stamp.draw_luma(&mut view, unix_ms);
        } else {
            overlay.draw_chroma(&mut view);
            stamp.draw_chroma(&mut view);
        }
    }
}
