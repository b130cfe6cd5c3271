//! Thumbnails: every [`THUMBNAIL_EVERY_MS`] of media time one decoded picture (the one the
//! lowest rung is scaled from) becomes a small JPEG of the lowest rung's shape, on a
//! thread of its own, and leaves as [`LiveEvent::Thumbnail`] to be signed and pushed like
//! the media.
//!
//! The cost is bounded: one picture per interval at most, and none while the previous one
//! is still being encoded (the hand-over holds one picture; a full one means "skip this
//! frame, take a later one"), so a slow machine gets fewer thumbnails, never a backlog, and
//! the coordinator never waits. A failure here is logged and ends the thumbnails of the
//! session, never the stream.
//!
//! [`ThumbnailPacer`] (sans-IO: which presentation times are due) is tested here; the
//! thread around it is exercised by the pipeline's tests through FFmpeg.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use domain::{LiveEvent, SessionId, StreamName, Thumbnail, ThumbnailMeta, MAX_THUMBNAIL_BYTES};
use tokio::sync::mpsc;

use super::clock::Clock;
use super::transcode::{DecodedFrame, ThumbnailEncoder};

/// Media time between two thumbnails.
pub(super) const THUMBNAIL_EVERY_MS: i64 = 5_000;

/// Widest thumbnail, pixels (a narrower lowest rung keeps its own width).
pub(super) const THUMBNAIL_WIDTH: u32 = 320;

/// Which presentation times become thumbnails: the first picture, then the first at least
/// `every_ms` after the last one taken. A jump back in time (a publisher that restarted
/// its clock) starts over.
#[derive(Debug, Clone)]
pub(super) struct ThumbnailPacer {
    every_ms: i64,
    last: Option<i64>,
}

impl ThumbnailPacer {
    /// A pacer taking one picture per `every_ms` (at least 1).
    pub(super) fn new(every_ms: i64) -> Self {
        ThumbnailPacer {
            every_ms: every_ms.max(1),
            last: None,
        }
    }

    /// Whether a picture at `pts_ms` is due. Nothing changes until [`Self::taken`].
    pub(super) fn due(&self, pts_ms: i64) -> bool {
        match self.last {
            None => true,
            Some(last) => pts_ms < last || pts_ms - last >= self.every_ms,
        }
    }

    /// The picture at `pts_ms` was taken.
    pub(super) fn taken(&mut self, pts_ms: i64) {
        self.last = Some(pts_ms);
    }
}

/// The size of a thumbnail of a `width` × `height` rung: at most [`THUMBNAIL_WIDTH`] wide
/// and twice that high, the same shape, both even (4:2:0) and at least 2.
pub(super) fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let even = |n: u64| u32::try_from((n / 2 * 2).max(2)).unwrap_or(2);
    let (width, height) = (u64::from(width.max(2)), u64::from(height.max(2)));
    let max_h = 2 * u64::from(THUMBNAIL_WIDTH);
    let mut w = width.min(u64::from(THUMBNAIL_WIDTH));
    let mut h = height * w / width;
    if h > max_h {
        h = max_h;
        w = width * max_h / height;
    }
    (even(w), even(h))
}

/// A picture handed to the thumbnail thread.
struct Job {
    frame: Arc<DecodedFrame>,
    sequence: u64,
    captured_ms: u64,
}

/// One session's thumbnails, owned by the coordinator.
pub(super) struct Thumbnails {
    pacer: ThumbnailPacer,
    clock: Clock,
    /// The segment the latest frame belongs to (the last boundary passed).
    sequence: u64,
    tx: Option<std_mpsc::SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Thumbnails {
    /// Starts the thread of `stream`'s thumbnails of `size` (see [`thumbnail_size`]),
    /// handing each to `events`. `None` if the thread cannot start (logged): the stream
    /// goes on without thumbnails.
    pub(super) fn start(
        stream: StreamName,
        session: SessionId,
        size: (u32, u32),
        first_sequence: u64,
        clock: Clock,
        events: mpsc::Sender<LiveEvent>,
    ) -> Option<Self> {
        // One picture in hand at most: a second is skipped, not queued.
        let (tx, rx) = std_mpsc::sync_channel::<Job>(1);
        let name = format!("thumbs-{stream}");
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(stream, session, size, rx, events));
        match thread {
            Ok(thread) => Some(Thumbnails {
                pacer: ThumbnailPacer::new(THUMBNAIL_EVERY_MS),
                clock,
                sequence: first_sequence,
                tx: Some(tx),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no thumbnail thread; the stream goes on without thumbnails");
                None
            }
        }
    }

    /// A decoded picture (the one every encoded rung gets), starting segment `force` if
    /// it starts one: handed over if a thumbnail is due and the thread is free.
    pub(super) fn frame(&mut self, frame: &Arc<DecodedFrame>, force: Option<u64>) {
        if let Some(sequence) = force {
            self.sequence = sequence;
        }
        let Some(pts) = frame.pts_ms() else { return };
        let Some(tx) = &self.tx else { return };
        if !self.pacer.due(pts) {
            return;
        }
        let job = Job {
            frame: Arc::clone(frame),
            sequence: self.sequence,
            captured_ms: self.clock.wall_ms(pts),
        };
        match tx.try_send(job) {
            Ok(()) => self.pacer.taken(pts),
            // Busy with the previous picture: a later frame is taken instead.
            Err(std_mpsc::TrySendError::Full(_)) => {}
            Err(std_mpsc::TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Ends the thread once its picture in hand is done (when the session's pipeline
    /// lets go of it: dropped with the coordinator's state).
    fn finish(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Thumbnails {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The thread: pictures in, signed-to-be thumbnails out, until the coordinator hangs up or
/// the events channel closes.
fn run(
    stream: StreamName,
    session: SessionId,
    (width, height): (u32, u32),
    rx: std_mpsc::Receiver<Job>,
    events: mpsc::Sender<LiveEvent>,
) {
    let mut encoder = match ThumbnailEncoder::new(width, height) {
        Ok(encoder) => encoder,
        Err(e) => {
            tracing::warn!(%stream, error = %e, "no JPEG encoder; the stream goes on without thumbnails");
            return;
        }
    };
    for job in rx.iter() {
        let bytes = match encoder.encode(&job.frame) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "a thumbnail failed; skipping it");
                continue;
            }
        };
        drop(job.frame);
        if bytes.len() > MAX_THUMBNAIL_BYTES {
            tracing::warn!(%stream, len = bytes.len(), "a thumbnail is over the size cap; skipping it");
            continue;
        }
        let thumbnail = Thumbnail {
            meta: ThumbnailMeta {
                stream: stream.clone(),
                session,
                sequence: job.sequence,
                captured_ms: job.captured_ms,
                width,
                height,
            },
            bytes,
        };
        if events
            .blocking_send(LiveEvent::Thumbnail(thumbnail))
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_first_picture_then_one_per_interval() {
        let mut pacer = ThumbnailPacer::new(5_000);
        let mut taken = Vec::new();
        for pts in (0..20_000).step_by(40) {
            if pacer.due(pts) {
                pacer.taken(pts);
                taken.push(pts);
            }
        }
        assert_eq!(taken, [0, 5_000, 10_000, 15_000]);
    }

    #[test]
    fn sizes_keep_the_shape_and_are_even() {
        assert_eq!(thumbnail_size(640, 360), (320, 180));
        assert_eq!(thumbnail_size(1280, 720), (320, 180));
        assert_eq!(thumbnail_size(256, 144), (256, 144));
        assert_eq!(thumbnail_size(480, 360), (320, 240));
        assert_eq!(thumbnail_size(1, 1), (2, 2));
    }

    proptest! {
        /// However the times come, no two pictures taken are closer than the interval
        /// unless time went back.
        #[test]
        fn never_more_than_one_per_interval(steps in proptest::collection::vec(0i64..3_000, 1..200)) {
            let mut pacer = ThumbnailPacer::new(5_000);
            let mut pts = 0;
            let mut last: Option<i64> = None;
            for step in steps {
                pts += step;
                if pacer.due(pts) {
                    if let Some(l) = last {
                        prop_assert!(pts - l >= 5_000);
                    }
                    pacer.taken(pts);
                    last = Some(pts);
                }
            }
        }

        #[test]
        fn sizes_are_bounded_and_even(w in 1u32..8192, h in 1u32..8192) {
            let (tw, th) = thumbnail_size(w, h);
            prop_assert!((2..=THUMBNAIL_WIDTH).contains(&tw) && tw % 2 == 0);
            prop_assert!((2..=2 * THUMBNAIL_WIDTH).contains(&th) && th % 2 == 0);
        }
    }
}
