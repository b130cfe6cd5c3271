//! An encoded rung's thread ([`spawn_worker`]): scale, x264, cut at the forced keyframes,
//! and hand what closes to the rung's [`RungMuxer`].

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use domain::{PlannedRung, RenditionName, RungKind};

use crate::error::IngestError;
use crate::metrics::IngestMetrics;

use super::boundary::ForcedCuts;
use super::emit::RungOutput;
use super::params::PipelineParams;
use super::rung::{millis, part_target_ms, RungMuxer};
use super::segmenter::{AudioFrame, Closed, RungSegmenter, VideoPacket};
use super::transcode::{DecodedFrame, EncodeSpec, EncodedPacket, RungEncoder};

/// What the coordinator hands an encoded rung's thread.
pub(super) enum WorkerInput {
    /// A decoded picture (shared by every rung), with the sequence number of the segment
    /// it must start as an IDR, if it starts one.
    Frame(Arc<DecodedFrame>, Option<u64>),
    /// An ADTS audio frame, for every rung alike.
    Audio(AudioFrame),
    /// The stream ended at this presentation time (ms): flush and stop.
    Finish(i64),
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
    frame_rate: f64,
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
        low_latency: muxer.part_target.is_some(),
    };
    let part_target_ms = part_target_ms(muxer.part_target);
    // The scaler inside the encoder is not Send: open it on the worker's own thread and
    // report how that went before the stream starts.
    let (opened_tx, opened_rx) = std_mpsc::sync_channel::<Result<(), IngestError>>(1);
    // A few frames of slack; a full queue blocks the coordinator, which is how lag shows.
    let (tx, rx) = std_mpsc::sync_channel::<WorkerInput>(8);
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
                segmenter: RungSegmenter::with_parts(has_audio, part_target_ms),
                forced: ForcedCuts::default(),
                last_pts: i64::MIN,
                since: Instant::now(),
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
    fn frame(&mut self, frame: &DecodedFrame, force: Option<u64>) -> Result<(), IngestError> {
        let pts = frame.pts_ms().unwrap_or(i64::MIN);
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
    fn packets(&mut self, packets: Vec<EncodedPacket>) -> Vec<Closed> {
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

    /// Muxes closed parts and segments and hands them on (the rung's info before its
    /// first), with the encode speed measured between segments.
    fn send(&mut self, closed: Vec<Closed>) {
        for c in closed {
            if let Closed::Segment(s) = &c {
                let media = millis(s.end_pts_ms - s.start_pts_ms);
                let wall = self.since.elapsed().as_secs_f64();
                if wall > 0.0 {
                    let fps = s.video.len() as f64 / wall;
                    let speed = media.as_secs_f64() / wall;
                    self.metrics.set_encode_speed(
                        &self.muxer.params.stream,
                        &self.muxer.name,
                        fps,
                        speed,
                    );
                }
                self.since = Instant::now();
                self.metrics
                    .segment(&self.muxer.params.stream, &self.muxer.name);
            }
            if let Err(e) = self.muxer.output(c, &self.out) {
                tracing::warn!(stream = %self.muxer.params.stream, rendition = %self.muxer.name, error = %e, "could not package encoded media; skipping it");
            }
        }
    }
}
