//! One stream's live pipeline: FLV media in, segments of every rung out, on dedicated
//! threads (never the async executor).
//!
//! ```text
//!             ┌─ src rung: segmenter → TS mux ───────────────────────┐
//! media ─► coordinator ─ decode once ─► worker 720p: scale → x264 → segmenter → TS ─┤► aligner ─► LiveEvents
//!             │                     └─► worker 480p ...                           │
//!             └─ audio (AAC → ADTS) to every rung ─────────────────────────────────┘
//! ```
//!
//! The coordinator plans the segment boundaries once: a boundary is the first source
//! keyframe at least a target duration after the previous one. The source rung cuts there;
//! the decoded frame with the same presentation time is forced to an IDR on every encoded
//! rung, so segment N starts at the same PTS everywhere. When encoding falls behind real
//! time the lowest-priority encoded rung is shed instead of queueing without bound.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::{
    Codecs, Ladder, LiveEvent, PlannedRung, RenditionInfo, RenditionName, RungKind, Segment,
    SegmentMeta, SessionId, StreamName,
};
use ffmpeg_next::{frame, Rational};
use tokio::sync::mpsc;

use crate::align::SequenceAligner;
use crate::boundary::{BoundaryPlan, CutQueue, ForcedCuts};
use crate::container::aac::AacConfig;
use crate::container::h264::{self, AvcConfig};
use crate::container::ts::{TsAudio, TsMuxer, TsVideo};
use crate::error::IngestError;
use crate::lag::{LagMonitor, LagVerdict};
use crate::metrics::IngestMetrics;
use crate::segmenter::{AudioFrame, ClosedSegment, RungSegmenter, VideoPacket};
use crate::transcode::{AudioTranscoder, EncodeSpec, RungEncoder, VideoDecoder};

/// Media handed to a pipeline, already split out of FLV tags.
#[derive(Debug, Clone)]
pub enum MediaInput {
    /// An AVCDecoderConfigurationRecord.
    VideoConfig(Bytes),
    /// One H.264 access unit, AVCC framed.
    Video {
        /// Decode time (ms).
        dts_ms: i64,
        /// Composition offset (ms): pts = dts + cts.
        cts_ms: i32,
        /// Marked as a keyframe by the publisher.
        keyframe: bool,
        /// Length-prefixed NAL units.
        avcc: Bytes,
    },
    /// An AAC AudioSpecificConfig.
    AudioConfig(Bytes),
    /// One raw AAC frame.
    Audio {
        /// Presentation time (ms).
        pts_ms: i64,
        /// The frame.
        raw: Bytes,
    },
    /// One MP3 frame, to be re-encoded to AAC.
    Mp3 {
        /// Presentation time (ms).
        pts_ms: i64,
        /// The MP3 data.
        data: Bytes,
    },
    /// The publisher's declared frame rate (onMetaData), a hint for rate control.
    FrameRate(f64),
}

/// Told the next sequence number before each segment number leaves the pipeline, on the
/// thread that hands segments on: a store that numbering must survive (the catalog), so
/// that whatever an edge saw is never ahead of it. It may block for a moment.
#[derive(Clone)]
pub struct SequenceRecorder(Arc<dyn Fn(u64) + Send + Sync>);

impl SequenceRecorder {
    /// A recorder calling `record(next)`.
    pub fn new(record: impl Fn(u64) + Send + Sync + 'static) -> Self {
        SequenceRecorder(Arc::new(record))
    }
}

impl std::fmt::Debug for SequenceRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SequenceRecorder")
    }
}

/// Where a pipeline's segments start and how they are labelled.
#[derive(Debug, Clone)]
pub struct PipelineParams {
    /// The stream.
    pub stream: StreamName,
    /// This publish session.
    pub session: SessionId,
    /// Sequence number of the first segment.
    pub first_sequence: u64,
    /// Discontinuity sequence of every segment of this session.
    pub discontinuity_sequence: u64,
    /// Whether the first segment follows an earlier session (`#EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// The ladder to produce.
    pub ladder: Arc<Ladder>,
    /// Live input: measure lag against the wall clock and shed rungs when behind. Off for
    /// files transcoded as fast as possible.
    pub realtime: bool,
    /// x264 threads per encoded rung (0 = x264's choice).
    pub encoder_threads: usize,
    /// Where the next sequence number is recorded before each segment number leaves.
    pub recorder: Option<SequenceRecorder>,
}

/// How a pipeline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOutcome {
    /// The sequence number the next session should start at.
    pub next_sequence: u64,
    /// Segment boundaries planned (segments per rung).
    pub segments: u64,
    /// Whether the session got as far as its first keyframe (edges know about it).
    pub started: bool,
}

/// A running pipeline: feed it with [`Pipeline::sender`], end it by dropping every sender
/// and calling [`Pipeline::finish`].
#[derive(Debug)]
pub struct Pipeline {
    input: mpsc::Sender<MediaInput>,
    thread: JoinHandle<(PipelineOutcome, Option<IngestError>)>,
}

impl Pipeline {
    /// Starts the coordinator thread. `events` receives everything edges need, in order.
    pub fn start(
        params: PipelineParams,
        events: mpsc::Sender<LiveEvent>,
        metrics: IngestMetrics,
    ) -> Result<Self, IngestError> {
        let (input, rx) = mpsc::channel(256);
        let name = format!("ingest-{}", params.stream);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || Coordinator::new(params, events, metrics).run(rx))?;
        Ok(Pipeline { input, thread })
    }

    /// A handle to send media with (async side: `send().await` applies backpressure).
    pub fn sender(&self) -> mpsc::Sender<MediaInput> {
        self.input.clone()
    }

    /// Closes the input and waits for every rung to flush; the outcome is there even when
    /// the pipeline stopped on an error (it says where numbering stands). Blocking: call it
    /// from `spawn_blocking` in async code.
    pub fn finish(self) -> (PipelineOutcome, Option<IngestError>) {
        drop(self.input);
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => (
                PipelineOutcome {
                    next_sequence: 0,
                    segments: 0,
                    started: false,
                },
                Some(IngestError::PipelineStopped(
                    "the coordinator thread panicked",
                )),
            ),
        }
    }
}

/// Timestamps inside TS segments: milliseconds from the first keyframe, plus a margin so
/// that decode times before it stay positive.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base_ms: i64,
}

impl Clock {
    const MARGIN_MS: i64 = 1400;

    fn to_90k(self, ms: i64) -> u64 {
        u64::try_from((ms - self.base_ms + Self::MARGIN_MS).max(0)).unwrap_or(0) * 90
    }
}

enum RungOutput {
    Info(usize, RenditionInfo),
    Segment(usize, Segment),
    Dropped(usize),
}

enum WorkerInput {
    Frame(Arc<frame::Video>, Option<u64>),
    Audio(AudioFrame),
    Finish(i64),
}

/// Turns a rung's closed segments into labelled TS segments.
struct RungMuxer {
    index: usize,
    name: RenditionName,
    muxer: TsMuxer,
    clock: Clock,
    params: Arc<PipelineParams>,
    audio_codec: Option<String>,
    announced: bool,
}

impl RungMuxer {
    fn mux(&mut self, closed: ClosedSegment) -> Segment {
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
    fn info(
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

struct WorkerHandle {
    tx: Option<std_mpsc::SyncSender<WorkerInput>>,
    thread: Option<JoinHandle<()>>,
    name: RenditionName,
}

struct Started {
    /// The source rung, cut without re-encoding (absent if the ladder has none).
    src: Option<(RungMuxer, RungSegmenter)>,
    workers: Vec<WorkerHandle>,
    decoder: Option<VideoDecoder>,
    /// Boundaries not yet matched to a decoded frame: (pts, sequence).
    /// Cuts planned for the encoded rungs, until their decoded frames come.
    cuts: CutQueue,
    has_audio: bool,
    wall_start: Instant,
    lag: LagMonitor,
}

struct Coordinator {
    params: Arc<PipelineParams>,
    events: mpsc::Sender<LiveEvent>,
    metrics: IngestMetrics,
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    frame_rate_hint: Option<f64>,
    started: Option<Started>,
    /// Which source keyframes start segments.
    plan: BoundaryPlan,
    last_pts: Option<i64>,
    /// First video pts and frames since, for the mean frame interval (the end of the last
    /// segment is the last frame's pts plus one interval).
    first_pts: Option<i64>,
    frames: u64,
    out_tx: Option<std_mpsc::Sender<RungOutput>>,
    emitter: Option<JoinHandle<()>>,
    warned_late_audio: bool,
    /// Whether more input was queued when the current item was taken: only then can the
    /// pipeline be behind.
    input_waiting: bool,
    /// Re-encodes MP3 audio to AAC, when the publisher sends MP3.
    audio_transcoder: Option<AudioTranscoder>,
}

impl Coordinator {
    fn new(
        params: PipelineParams,
        events: mpsc::Sender<LiveEvent>,
        metrics: IngestMetrics,
    ) -> Self {
        let target_ms = i64::try_from(params.ladder.segment_target.as_millis()).unwrap_or(2000);
        let plan = BoundaryPlan::new(target_ms, params.first_sequence);
        Coordinator {
            params: Arc::new(params),
            events,
            metrics,
            avc: None,
            aac: None,
            frame_rate_hint: None,
            started: None,
            plan,
            last_pts: None,
            first_pts: None,
            frames: 0,
            out_tx: None,
            emitter: None,
            warned_late_audio: false,
            input_waiting: false,
            audio_transcoder: None,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<MediaInput>) -> (PipelineOutcome, Option<IngestError>) {
        let mut malformed = 0u32;
        let mut error = None;
        while let Some(input) = rx.blocking_recv() {
            self.input_waiting = !rx.is_empty();
            match self.handle(input) {
                Ok(()) => malformed = 0,
                // One damaged access unit is skipped; a stream of them ends the session.
                Err(e @ IngestError::Container(_)) if malformed < 50 => {
                    if malformed == 0 {
                        tracing::warn!(stream = %self.params.stream, error = %e, "skipping malformed media");
                    }
                    malformed += 1;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        drop(rx);
        let started = self.started.is_some();
        // Whatever happened, flush what is there so edges get every finished segment.
        if let Err(e) = self.finish() {
            error.get_or_insert(e);
        }
        let outcome = PipelineOutcome {
            next_sequence: self.plan.next_sequence(),
            segments: self.plan.next_sequence() - self.params.first_sequence,
            started,
        };
        (outcome, error)
    }

    fn handle(&mut self, input: MediaInput) -> Result<(), IngestError> {
        match input {
            MediaInput::VideoConfig(record) => {
                self.avc = Some(AvcConfig::parse(&record)?);
            }
            MediaInput::AudioConfig(asc) => {
                self.aac = Some(AacConfig::parse(&asc)?);
            }
            MediaInput::FrameRate(fps) => {
                if fps.is_finite() && (1.0..=240.0).contains(&fps) {
                    self.frame_rate_hint = Some(fps);
                }
            }
            MediaInput::Audio { pts_ms, raw } => {
                if self.audio_transcoder.is_none() {
                    self.audio(pts_ms, raw)?;
                }
            }
            MediaInput::Mp3 { pts_ms, data } => {
                if self.audio_transcoder.is_none() {
                    if self.aac.is_some() {
                        return Ok(()); // AAC already flows; a second audio codec is ignored
                    }
                    tracing::info!(stream = %self.params.stream, "the publisher sends MP3; re-encoding it to AAC");
                    self.audio_transcoder =
                        Some(AudioTranscoder::new(ffmpeg_next::codec::Id::MP3)?);
                    self.aac = Some(AacConfig::parse(&AudioTranscoder::audio_specific_config())?);
                }
                let frames = match self.audio_transcoder.as_mut() {
                    Some(t) => t.push(&data, pts_ms)?,
                    None => Vec::new(),
                };
                for (pts, raw) in frames {
                    self.audio(pts, raw)?;
                }
            }
            MediaInput::Video {
                dts_ms,
                cts_ms,
                keyframe,
                avcc,
            } => self.video(dts_ms, cts_ms, keyframe, &avcc)?,
        }
        Ok(())
    }

    fn audio(&mut self, pts_ms: i64, raw: Bytes) -> Result<(), IngestError> {
        let Some(aac) = &self.aac else {
            return Ok(()); // raw AAC before its config cannot be framed; skip it
        };
        let Some(started) = &mut self.started else {
            return Ok(()); // before the first keyframe nothing is being cut yet
        };
        if !started.has_audio {
            if !self.warned_late_audio {
                tracing::warn!(stream = %self.params.stream, "audio started after video; it is ignored until the publisher reconnects");
                self.warned_late_audio = true;
            }
            return Ok(());
        }
        let header = aac.adts_header(raw.len())?;
        let mut framed = Vec::with_capacity(header.len() + raw.len());
        framed.extend_from_slice(&header);
        framed.extend_from_slice(&raw);
        let frame = AudioFrame {
            pts_ms,
            data: Bytes::from(framed),
        };
        for worker in &mut started.workers {
            if let Some(tx) = &worker.tx {
                if tx.send(WorkerInput::Audio(frame.clone())).is_err() {
                    worker.tx = None;
                }
            }
        }
        if let Some((muxer, segmenter)) = &mut started.src {
            let closed = segmenter.push_audio(frame);
            Self::emit_src(&self.out_tx, muxer, closed, &self.avc)?;
        }
        Ok(())
    }

    fn video(
        &mut self,
        dts_ms: i64,
        cts_ms: i32,
        keyframe: bool,
        avcc: &[u8],
    ) -> Result<(), IngestError> {
        let avc = self.avc.as_ref().ok_or(IngestError::MissingVideoConfig)?;
        let mut annexb = Vec::with_capacity(avcc.len() + 64);
        h264::avcc_to_annexb(avc, avcc, &mut annexb)?;
        let annexb = Bytes::from(annexb);
        let pts_ms = dts_ms + i64::from(cts_ms);
        if self.started.is_none() {
            if !keyframe {
                return Ok(());
            }
            self.start(pts_ms)?;
        }
        self.first_pts.get_or_insert(pts_ms);
        self.frames += 1;
        self.last_pts = Some(self.last_pts.map_or(pts_ms, |p| p.max(pts_ms)));

        let cut_seq = self
            .plan
            .frame(pts_ms, keyframe, avcc.len())
            .map_err(|e| IngestError::NoKeyframe {
                seconds: e.seconds,
                bytes: e.bytes,
            })?;

        let Some(started) = &mut self.started else {
            return Ok(());
        };
        if let Some(seq) = cut_seq {
            if !started.workers.is_empty() {
                started.cuts.push(pts_ms, seq);
            }
        }
        // Source rung.
        if let Some((muxer, segmenter)) = &mut started.src {
            let closed = segmenter.push_video(
                VideoPacket {
                    pts_ms,
                    dts_ms,
                    keyframe,
                    data: annexb.clone(),
                },
                cut_seq,
            );
            Self::emit_src(&self.out_tx, muxer, closed, &self.avc)?;
        }
        // Encoded rungs: decode once, hand the same frame to every worker.
        if let Some(decoder) = &mut started.decoder {
            let frames = decoder.decode(&annexb, pts_ms, dts_ms)?;
            Self::dispatch(started, frames);
        }
        if self.params.realtime {
            self.check_lag(pts_ms);
        }
        Ok(())
    }

    fn dispatch(started: &mut Started, frames: Vec<frame::Video>) {
        for frame in frames {
            let pts = frame.pts().unwrap_or(i64::MIN);
            let force = started.cuts.frame(pts);
            let frame = Arc::new(frame);
            for worker in &mut started.workers {
                if let Some(tx) = &worker.tx {
                    if tx
                        .send(WorkerInput::Frame(Arc::clone(&frame), force))
                        .is_err()
                    {
                        worker.tx = None;
                    }
                }
            }
        }
    }

    fn emit_src(
        out: &Option<std_mpsc::Sender<RungOutput>>,
        muxer: &mut RungMuxer,
        closed: Vec<ClosedSegment>,
        avc: &Option<AvcConfig>,
    ) -> Result<(), IngestError> {
        let Some(out) = out else { return Ok(()) };
        for c in closed {
            if !muxer.announced {
                let (w, h) = avc
                    .as_ref()
                    .and_then(|a| a.sps.first())
                    .and_then(|sps| h264::sps_dimensions(sps).ok())
                    .unwrap_or((0, 0));
                let codec = avc
                    .as_ref()
                    .map_or_else(|| "avc1.640028".to_owned(), AvcConfig::codec_string);
                let info = muxer.info(&c, w, h, codec);
                let _ = out.send(RungOutput::Info(muxer.index, info));
                muxer.announced = true;
            }
            let seg = muxer.mux(c);
            let _ = out.send(RungOutput::Segment(muxer.index, seg));
        }
        Ok(())
    }

    /// Sets everything up on the first keyframe, when the source's size is known.
    fn start(&mut self, first_pts_ms: i64) -> Result<(), IngestError> {
        let avc = self.avc.as_ref().ok_or(IngestError::MissingVideoConfig)?;
        let sps = avc.sps.first().ok_or(IngestError::MissingVideoConfig)?;
        let (width, height) = h264::sps_dimensions(sps)?;
        let plan = self.params.ladder.plan(width, height);
        let clock = Clock {
            base_ms: first_pts_ms,
        };
        let has_audio = self.aac.is_some();
        let audio_codec = self.aac.as_ref().map(AacConfig::codec_string);
        tracing::info!(
            stream = %self.params.stream,
            width, height,
            rungs = ?plan.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            audio = has_audio,
            "publish started; transcoding"
        );

        let (out_tx, out_rx) = std_mpsc::channel::<RungOutput>();
        let aligner = SequenceAligner::new(self.params.stream.clone(), plan.len());
        let events = self.events.clone();
        let recorder = self.params.recorder.clone();
        let emitter = std::thread::Builder::new()
            .name(format!("emit-{}", self.params.stream))
            .spawn(move || emit(aligner, out_rx, events, recorder))?;
        let _ = self.events.blocking_send(LiveEvent::SessionStarted {
            stream: self.params.stream.clone(),
            session: self.params.session,
        });

        let fps = self.frame_rate_hint.unwrap_or(30.0);
        let frame_rate = Rational((fps * 1000.0).round() as i32, 1000).reduce();
        let mut src = None;
        let mut workers = Vec::new();
        for (index, rung) in plan.into_iter().enumerate() {
            let muxer = RungMuxer {
                index,
                name: rung.name.clone(),
                muxer: TsMuxer::new(has_audio),
                clock,
                params: Arc::clone(&self.params),
                audio_codec: audio_codec.clone(),
                announced: false,
            };
            match &rung.kind {
                RungKind::Source => src = Some((muxer, RungSegmenter::new(has_audio))),
                RungKind::Encode { .. } => {
                    workers.push(spawn_worker(
                        rung,
                        muxer,
                        has_audio,
                        frame_rate,
                        &self.params,
                        out_tx.clone(),
                        self.metrics.clone(),
                    )?);
                }
            }
        }
        let decoder = if workers.is_empty() {
            None
        } else {
            Some(VideoDecoder::new()?)
        };
        self.out_tx = Some(out_tx);
        self.emitter = Some(emitter);
        self.started = Some(Started {
            src,
            workers,
            decoder,
            cuts: CutQueue::default(),
            has_audio,
            wall_start: Instant::now(),
            lag: LagMonitor::new(
                2 * i64::try_from(self.params.ladder.segment_target.as_millis()).unwrap_or(2000),
            ),
        });
        Ok(())
    }

    /// Sheds the lowest-priority encoded rung when the pipeline is more than two target
    /// durations behind the wall clock.
    fn check_lag(&mut self, pts_ms: i64) {
        let Some(started) = &mut self.started else {
            return;
        };
        let wall = i64::try_from(started.wall_start.elapsed().as_millis()).unwrap_or(i64::MAX);
        let lag_ms = match started.lag.observe(wall, pts_ms, self.input_waiting) {
            LagVerdict::Keeping(lag) => lag,
            LagVerdict::Shed(lag) => {
                if let Some(worker) = started.workers.iter_mut().rev().find(|w| w.tx.is_some()) {
                    tracing::warn!(
                        stream = %self.params.stream,
                        rendition = %worker.name,
                        lag_ms = lag,
                        "encoding is behind real time; shedding the lowest-priority rung"
                    );
                    self.metrics.rung_shed(&self.params.stream, &worker.name);
                    worker.tx = None; // the worker flushes what it has and stops
                } else {
                    tracing::warn!(stream = %self.params.stream, lag_ms = lag, "behind real time with nothing left to shed");
                }
                lag
            }
        };
        self.metrics
            .set_lag(&self.params.stream, lag_ms as f64 / 1000.0);
    }

    fn finish(&mut self) -> Result<(), IngestError> {
        let Some(mut started) = self.started.take() else {
            return Ok(());
        };
        let end_ms = match (self.first_pts, self.last_pts) {
            (Some(first), Some(last)) if self.frames > 1 => {
                let interval = (last - first) as f64 / (self.frames - 1) as f64;
                (last as f64 + interval.clamp(1.0, 1000.0)).round() as i64
            }
            (_, Some(last)) => last + 33,
            _ => 0,
        };
        if let Some(decoder) = &mut started.decoder {
            match decoder.flush() {
                Ok(frames) => Self::dispatch(&mut started, frames),
                Err(e) => tracing::warn!(error = %e, "decoder flush failed"),
            }
        }
        if let Some((muxer, segmenter)) = &mut started.src {
            let closed = segmenter.finish(end_ms);
            Self::emit_src(&self.out_tx, muxer, closed, &self.avc)?;
        }
        for worker in &mut started.workers {
            if let Some(tx) = worker.tx.take() {
                let _ = tx.send(WorkerInput::Finish(end_ms));
            }
        }
        for worker in &mut started.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
        self.out_tx = None;
        if let Some(emitter) = self.emitter.take() {
            let _ = emitter.join();
        }
        Ok(())
    }
}

fn emit(
    mut aligner: SequenceAligner,
    rx: std_mpsc::Receiver<RungOutput>,
    events: mpsc::Sender<LiveEvent>,
    recorder: Option<SequenceRecorder>,
) {
    let mut recorded = None;
    let mut send = |evs: Vec<LiveEvent>| {
        for e in evs {
            if let (LiveEvent::Segment(segment), Some(recorder)) = (&e, &recorder) {
                let next = segment.meta.sequence + 1;
                if recorded.is_none_or(|r| next > r) {
                    (recorder.0)(next);
                    recorded = Some(next);
                }
            }
            if events.blocking_send(e).is_err() {
                return;
            }
        }
    };
    for output in rx {
        let evs = match output {
            RungOutput::Info(rung, info) => aligner.info(rung, info),
            RungOutput::Segment(rung, seg) => aligner.segment(rung, seg),
            RungOutput::Dropped(rung) => aligner.drop_rung(rung),
        };
        send(evs);
    }
    send(aligner.finish());
}

fn spawn_worker(
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
    let name = rung.name.clone();
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
                self.metrics
                    .set_encode_speed(&self.muxer.params.stream, &self.muxer.name, fps, speed);
            }
            self.since = Instant::now();
            let seg = self.muxer.mux(c);
            self.metrics.segment(&seg.meta.stream, &seg.meta.rendition);
            let _ = self.out.send(RungOutput::Segment(index, seg));
        }
    }
}
