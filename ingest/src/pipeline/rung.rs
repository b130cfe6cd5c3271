//! One rung's output side: [`RungMuxer`] turns closed segments into labelled TS segments,
//! and [`spawn_worker`] runs an encoded rung's thread (scale, x264, cut at the forced
//! keyframes, mux).

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use domain::{Codecs, PlannedRung, RenditionInfo, RenditionName, RungKind, Segment, SegmentMeta};
use ffmpeg_next::{frame, Rational};

use crate::boundary::ForcedCuts;
use crate::container::h264;
use crate::container::ts::{TsAudio, TsMuxer, TsVideo};
use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::segmenter::{ClosedSegment, RungSegmenter, VideoPacket};
use crate::transcode::{EncodeSpec, RungEncoder};

use super::{PipelineParams, RungOutput, WorkerInput};

/// Timestamps inside TS segments: milliseconds from the first keyframe, plus a margin so
/// that decode times before it stay positive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) base_ms: i64,
}

impl Clock {
    const MARGIN_MS: i64 = 1400;

    fn to_90k(self, ms: i64) -> u64 {
        u64::try_from((ms - self.base_ms + Self::MARGIN_MS).max(0)).unwrap_or(0) * 90
    }
}

/// Turns a rung's closed segments into labelled TS segments.
pub(super) struct RungMuxer {
    pub(super) index: usize,
    pub(super) name: RenditionName,
    pub(super) muxer: TsMuxer,
    pub(super) clock: Clock,
    pub(super) params: Arc<PipelineParams>,
    pub(super) audio_codec: Option<String>,
    pub(super) announced: bool,
}

impl RungMuxer {
    pub(super) fn mux(&mut self, closed: ClosedSegment) -> Segment {
        let clock = self.clock;
        let video: Vec<TsVideo> = closed
            .video
            .iter()
            .map(|v| TsVideo {
                pts_90k: clock.to_90k(v.pts_ms),
                dts_90k: clock.to_90k(v.dts_ms),
                keyframe: v.keyframe,
                data: v.data.clone(),
            })
            .collect();
        let audio: Vec<TsAudio> = closed
            .audio
            .iter()
            .map(|a| TsAudio {
                pts_90k: clock.to_90k(a.pts_ms),
                data: a.data.clone(),
            })
            .collect();
        let bytes = self.muxer.segment(&video, &audio);
        let first = closed.sequence == self.params.first_sequence;
        Segment {
            meta: SegmentMeta {
                stream: self.params.stream.clone(),
                rendition: self.name.clone(),
                session: self.params.session,
                sequence: closed.sequence,
                discontinuity_sequence: self.params.discontinuity_sequence,
                discontinuity: first && self.params.discontinuity,
                duration: Duration::from_millis(
                    u64::try_from(closed.end_pts_ms - closed.start_pts_ms).unwrap_or(0),
                ),
                start_pts_90k: clock.to_90k(closed.start_pts_ms),
            },
            bytes,
        }
    }

    /// The rendition's description, measured from its first segment.
    pub(super) fn info(
        &self,
        closed: &ClosedSegment,
        width: u32,
        height: u32,
        video_codec: String,
    ) -> RenditionInfo {
        let span_ms = (closed.end_pts_ms - closed.start_pts_ms).max(1) as f64;
        let frame_rate = closed.video.len() as f64 * 1000.0 / span_ms;
        let listed = match &self.audio_codec {
            Some(a) => format!("{video_codec},{a}"),
            None => video_codec,
        };
        // Both strings are hex digits and dots formatted here, so they always parse; the
        // plain H.264 High profile stands in should that ever change.
        let codecs = listed.parse().unwrap_or_else(|e| {
            tracing::warn!(codecs = %listed.escape_debug(), error = %e, "codecs not RFC 6381; announcing avc1.640028");
            Codecs::avc1_high()
        });
        RenditionInfo {
            name: self.name.clone(),
            width,
            height,
            frame_rate,
            codecs,
        }
    }
}

pub(super) struct WorkerHandle {
    pub(super) tx: Option<std_mpsc::SyncSender<WorkerInput>>,
    pub(super) thread: Option<JoinHandle<()>>,
    pub(super) name: RenditionName,
}

pub(super) fn spawn_worker(
    rung: PlannedRung,
    muxer: RungMuxer,
    has_audio: bool,
    frame_rate: Rational,
    params: &Arc<PipelineParams>,
    out: std_mpsc::Sender<RungOutput>,
    metrics: IngestMetrics,
) -> Result<WorkerHandle, IngestError> {
    let RungKind::Encode {
        bitrate_kbps,
        maxrate_kbps,
        bufsize_kbits,
        ..
    } = rung.kind
    else {
        return Err(IngestError::PipelineStopped(
            "a source rung cannot be encoded",
        ));
    };
    let spec = EncodeSpec {
        width: rung.width,
        height: rung.height,
        bitrate_kbps,
        maxrate_kbps,
        bufsize_kbits,
        preset: params.ladder.preset.clone(),
        frame_rate,
        threads: params.encoder_threads,
    };
    // The scaler inside the encoder is not Send: open it on the worker's own thread and
    // report how that went before the stream starts.
    let (opened_tx, opened_rx) = std_mpsc::sync_channel::<Result<(), IngestError>>(1);
    // A few frames of slack; a full queue blocks the coordinator, which is how lag shows.
    let (tx, rx) = std_mpsc::sync_channel::<WorkerInput>(8);
    let _name = rung.name.clone();
    let thread = std::thread::Builder::new()
        .name(format!("x264-{}-{}", params.stream, rung.name))
        .spawn(move || {
            let encoder = match RungEncoder::new(spec) {
                Ok(e) => {
                    let _ = opened_tx.send(Ok(()));
                    e
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            RungWorker {
                encoder,
                segmenter: RungSegmenter::new(has_audio),
                forced: ForcedCuts::default(),
                last_pts: i64::MIN,
                since: Instant::now(),
                size: (rung.width, rung.height),
                muxer,
                out,
                metrics,
            }
            .run(rx);
        })?;
    opened_rx
        .recv()
        .map_err(|_| IngestError::PipelineStopped("an encoder thread died while opening"))??;
    Ok(WorkerHandle {
        tx: Some(tx),
        thread: Some(thread),
        name: rung.name,
    })
}

/// One encoded rung's thread: frames in, its segments out, cut where the plan forced IDRs.
struct RungWorker {
    encoder: RungEncoder,
    segmenter: RungSegmenter,
    forced: ForcedCuts,
    /// The last frame's pts: x264 needs strictly increasing timestamps.
    last_pts: i64,
    /// Since the last segment closed: encode speed is measured between closes.
    since: Instant,
    /// The rung's picture size.
    size: (u32, u32),
    muxer: RungMuxer,
    out: std_mpsc::Sender<RungOutput>,
    metrics: IngestMetrics,
}

impl RungWorker {
    /// Until the coordinator says finish or goes away, or the encoder fails; then flushes
    /// (a normal end, a shed rung and a failure alike) and says whether the rung dropped.
    fn run(mut self, rx: std_mpsc::Receiver<WorkerInput>) {
        let mut finished_at = None;
        for input in rx.iter() {
            match input {
                WorkerInput::Frame(frame, force) => {
                    if let Err(e) = self.frame(&frame, force) {
                        tracing::error!(stream = %self.muxer.params.stream, rendition = %self.muxer.name, error = %e, "encoder failed; dropping the rung");
                        break;
                    }
                }
                WorkerInput::Audio(a) => {
                    let closed = self.segmenter.push_audio(a);
                    self.send(closed);
                }
                WorkerInput::Finish(end) => {
                    finished_at = Some(end);
                    break;
                }
            }
        }
        let packets = self.encoder.flush().unwrap_or_default();
        let mut closed = self.packets(packets);
        let end = finished_at.unwrap_or(self.last_pts.saturating_add(1));
        closed.extend(self.segmenter.finish(end));
        self.send(closed);
        if finished_at.is_none() {
            let _ = self.out.send(RungOutput::Dropped(self.muxer.index));
        }
    }

    /// Encodes one decoded frame (an IDR when `force` names the segment it starts).
    fn frame(&mut self, frame: &frame::Video, force: Option<u64>) -> Result<(), IngestError> {
        let pts = frame.pts().unwrap_or(i64::MIN);
        if pts <= self.last_pts {
            return Ok(());
        }
        self.last_pts = pts;
        if let Some(seq) = force {
            self.forced.forced(pts, seq);
        }
        let packets = self.encoder.encode(frame, force.is_some())?;
        let closed = self.packets(packets);
        self.send(closed);
        Ok(())
    }

    /// Encoded packets into the segmenter, cut at the forced keyframes.
    fn packets(&mut self, packets: Vec<crate::transcode::EncodedPacket>) -> Vec<ClosedSegment> {
        let mut closed = Vec::new();
        for p in packets {
            let cut = self.forced.packet(p.pts_ms, p.keyframe);
            closed.extend(self.segmenter.push_video(
                VideoPacket {
                    pts_ms: p.pts_ms,
                    dts_ms: p.dts_ms,
                    keyframe: p.keyframe,
                    data: p.data,
                },
                cut,
            ));
        }
        closed
    }

    /// Muxes closed segments and hands them on (the rung's info before its first), with the
    /// encode speed measured since the last close.
    fn send(&mut self, closed: Vec<ClosedSegment>) {
        let index = self.muxer.index;
        for c in closed {
            if !self.muxer.announced {
                let codec = c
                    .video
                    .iter()
                    .find(|v| v.keyframe)
                    .and_then(|v| h264::codec_string_from_annexb(&v.data))
                    .unwrap_or_else(|| "avc1.640028".to_owned());
                let info = self.muxer.info(&c, self.size.0, self.size.1, codec);
                let _ = self.out.send(RungOutput::Info(index, info));
                self.muxer.announced = true;
            }
            let media =
                Duration::from_millis(u64::try_from(c.end_pts_ms - c.start_pts_ms).unwrap_or(0));
            let wall = self.since.elapsed().as_secs_f64();
            if wall > 0.0 {
                let fps = c.video.len() as f64 / wall;
                let speed = media.as_secs_f64() / wall;
                self.metrics.set_encode_speed(
                    &self.muxer.params.stream,
                    &self.muxer.name,
                    fps,
                    speed,
                );
            }
            self.since = Instant::now();
            let seg = self.muxer.mux(c);
            self.metrics.segment(&seg.meta.stream, &seg.meta.rendition);
            let _ = self.out.send(RungOutput::Segment(index, seg));
        }
    }
}
