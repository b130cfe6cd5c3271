//! The coordinator thread: media in, boundaries planned once ([`super::boundary`]), the
//! source rung cut directly in the publisher's codec ([`super::source`]; encoded instead
//! where the ladder's container cannot carry it), the video decoded once for the encoded
//! rungs (through [`super::transcode`], whose frames stay opaque here), audio to every
//! rung (re-encoded to AAC first when the publisher sends another codec), and a rung shed
//! when encoding falls behind real time.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use container::aac::AacConfig;
use domain::{Ladder, LiveEvent, PlannedRung, RungKind};
use intake::media::{AudioCodec, MediaInput};
use tokio::sync::mpsc;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;

use super::align::SequenceAligner;
use super::boundary::{BoundaryPlan, CutQueue};
use super::clock::Clock;
use super::emit::{emit, RungOutput};
use super::lag::{LagMonitor, LagVerdict};
use super::params::{PipelineOutcome, PipelineParams};
use super::rung::{part_target_ms, RungMuxer, RungOutputSpec};
use super::segmenter::{AudioFrame, Closed, RungSegmenter, VideoPacket};
use super::source::SourceVideo;
use super::thumbnail::{thumbnail_size, Thumbnails};
use super::transcode::{AudioTranscoder, DecodedFrame, VideoDecoder};
use super::worker::{spawn_worker, WorkerHandle, WorkerInput};

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
    /// A still of the lowest rung every few seconds (none without encoded rungs).
    thumbnails: Option<Thumbnails>,
}

pub(super) struct Coordinator {
    params: Arc<PipelineParams>,
    events: mpsc::Sender<LiveEvent>,
    metrics: IngestMetrics,
    /// The publisher's video configuration, parsed.
    source: Option<SourceVideo>,
    aac: Option<AacConfig>,
    /// The AudioSpecificConfig `aac` was parsed from, for CMAF init segments.
    asc: Option<Bytes>,
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
    /// Re-encodes the publisher's audio to AAC, when it sends another codec (MP3, Opus,
    /// AC-3, E-AC-3).
    audio_transcoder: Option<AudioTranscoder>,
}

impl Coordinator {
    pub(super) fn new(
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
            source: None,
            aac: None,
            asc: None,
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

    pub(super) fn run(
        mut self,
        mut rx: mpsc::Receiver<MediaInput>,
    ) -> (PipelineOutcome, Option<IngestError>) {
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
            MediaInput::VideoConfig { codec, config } => {
                let parsed = SourceVideo::parse(codec, &config)?;
                if let (Some(_), Some(old)) = (&self.started, &self.source) {
                    if old.codec() != codec {
                        // The rungs were opened for the first codec.
                        return Err(IngestError::UnsupportedCodec {
                            kind: "video",
                            codec: format!("{codec:?} after {:?} in one publish", old.codec()),
                        });
                    }
                }
                self.source = Some(parsed);
            }
            MediaInput::AudioConfig {
                codec: AudioCodec::Aac,
                config,
            } => {
                self.aac = Some(AacConfig::parse(&config)?);
                self.asc = Some(config);
            }
            // The other codecs are re-encoded: their decoders read what they need from the
            // frames (an Opus ID header names mono or stereo, which the decoder's stereo
            // output covers). The transcoder opens now, so that audio is part of the
            // ladder from its first segment even if video comes first.
            MediaInput::AudioConfig { codec, .. } => self.open_transcoder(codec)?,
            MediaInput::FrameRate(fps) => {
                if fps.is_finite() && (1.0..=240.0).contains(&fps) {
                    self.frame_rate_hint = Some(fps);
                }
            }
            MediaInput::Audio {
                codec: AudioCodec::Aac,
                pts_ms,
                data,
            } => {
                if self.audio_transcoder.is_none() {
                    self.audio(pts_ms, data)?;
                }
            }
            MediaInput::Audio {
                codec,
                pts_ms,
                data,
            } => {
                if self.audio_transcoder.is_none() {
                    if self.aac.is_some() {
                        return Ok(()); // AAC already flows; a second audio codec is ignored
                    }
                    self.open_transcoder(codec)?;
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
                data,
            } => self.video(dts_ms, cts_ms, keyframe, &data)?,
        }
        Ok(())
    }

    /// Opens the re-encoding of `codec` to AAC, unless AAC already flows or a transcoder
    /// is open.
    fn open_transcoder(&mut self, codec: AudioCodec) -> Result<(), IngestError> {
        if self.audio_transcoder.is_some() || self.aac.is_some() || codec == AudioCodec::Aac {
            return Ok(());
        }
        tracing::info!(stream = %self.params.stream, ?codec, "the publisher's audio is not AAC; re-encoding it to AAC");
        self.audio_transcoder = Some(AudioTranscoder::new(codec)?);
        let asc = Bytes::copy_from_slice(&AudioTranscoder::audio_specific_config());
        self.aac = Some(AacConfig::parse(&asc)?);
        self.asc = Some(asc);
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
            Self::emit_src(&self.out_tx, muxer, closed)?;
        }
        Ok(())
    }

    fn video(
        &mut self,
        dts_ms: i64,
        cts_ms: i32,
        keyframe: bool,
        data: &[u8],
    ) -> Result<(), IngestError> {
        let source = self
            .source
            .as_ref()
            .ok_or(IngestError::MissingVideoConfig)?;
        let mut unit = Vec::with_capacity(data.len() + 64);
        source.access_unit(data, keyframe, &mut unit)?;
        let unit = Bytes::from(unit);
        let pts_ms = dts_ms + i64::from(cts_ms);
        if self.started.is_none() {
            if !keyframe {
                return Ok(());
            }
            self.start(pts_ms, data)?;
        }
        self.first_pts.get_or_insert(pts_ms);
        self.frames += 1;
        self.last_pts = Some(self.last_pts.map_or(pts_ms, |p| p.max(pts_ms)));

        let cut_seq =
            self.plan
                .frame(pts_ms, keyframe, data.len())
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
                    data: unit.clone(),
                },
                cut_seq,
            );
            Self::emit_src(&self.out_tx, muxer, closed)?;
        }
        // Encoded rungs: decode once, hand the same frame to every worker.
        if let Some(decoder) = &mut started.decoder {
            let frames = decoder.decode(&unit, pts_ms, dts_ms)?;
            Self::dispatch(started, frames);
        }
        if self.params.realtime {
            self.check_lag(pts_ms);
        }
        Ok(())
    }

    fn dispatch(started: &mut Started, frames: Vec<DecodedFrame>) {
        for frame in frames {
            let pts = frame.pts_ms().unwrap_or(i64::MIN);
            let force = started.cuts.frame(pts);
            let frame = Arc::new(frame);
            if let Some(thumbnails) = &mut started.thumbnails {
                thumbnails.frame(&frame, force);
            }
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
        closed: Vec<Closed>,
    ) -> Result<(), IngestError> {
        let Some(out) = out else { return Ok(()) };
        // Whatever fails, what closed after it still goes out (a segment after its parts).
        let mut result = Ok(());
        for c in closed {
            if let Err(e) = muxer.output(c, out) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Sets everything up on the first keyframe (`first`, as the publisher sent it), when
    /// the source's size is known.
    fn start(&mut self, first_pts_ms: i64, first: &[u8]) -> Result<(), IngestError> {
        let source = self
            .source
            .as_ref()
            .ok_or(IngestError::MissingVideoConfig)?;
        let (width, height) = source.dimensions(first)?;
        let mut plan = self.params.ladder.plan(width, height);
        if !source.passes_through(self.params.ladder.format) {
            tracing::info!(
                stream = %self.params.stream,
                codec = ?source.codec(),
                "MPEG-TS cannot carry this codec to HLS players; the src rung is encoded to H.264 at the source's size"
            );
            for rung in &mut plan {
                if rung.kind == RungKind::Source {
                    rung.kind = source_encode(&self.params.ladder, rung);
                }
            }
        }
        let wall_base_ms = i64::try_from(domain::time::WallClock.unix_ms()).unwrap_or(i64::MAX);
        let clock = Clock {
            base_ms: first_pts_ms,
            wall_base_ms,
        };
        let has_audio = self.aac.is_some();
        let output = RungOutputSpec {
            source: (width, height, source),
            clock,
            params: &self.params,
            audio: self.aac.zip(self.asc.clone()),
        };
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
        self.params.flags.announce(|flags| {
            let _ = self.events.blocking_send(LiveEvent::SessionStarted {
                stream: self.params.stream.clone(),
                session: self.params.session,
                private: flags.private,
                record: flags.record,
            });
        });

        // The lowest rung's shape: the plan's last encoded rung (tallest first).
        let lowest = plan
            .iter()
            .rev()
            .find(|r| matches!(r.kind, RungKind::Encode { .. }))
            .map(|r| thumbnail_size(r.width, r.height));
        let frame_rate = self.frame_rate_hint.unwrap_or(30.0);
        let mut src = None;
        let mut workers = Vec::new();
        for (index, rung) in plan.into_iter().enumerate() {
            let muxer = output.muxer(index, &rung);
            match &rung.kind {
                RungKind::Source => {
                    let segmenter =
                        RungSegmenter::with_parts(has_audio, part_target_ms(muxer.part_target));
                    src = Some((muxer, segmenter));
                }
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
            Some(VideoDecoder::new(source.codec())?)
        };
        let thumbnails = lowest.and_then(|size| {
            Thumbnails::start(
                self.params.stream.clone(),
                self.params.session,
                size,
                self.params.first_sequence,
                clock,
                self.events.clone(),
            )
        });
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
            thumbnails,
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
            Self::emit_src(&self.out_tx, muxer, closed)?;
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

/// How a `src` rung the container cannot pass through is encoded instead: at the source's
/// size (even), with the bitrate, VBV rate and buffer of the ladder's tallest encoded rung
/// scaled by the ratio of the pictures' areas (at least that rung's; 6 Mb/s at 1080p
/// when the ladder has none).
fn source_encode(ladder: &Ladder, rung: &mut PlannedRung) -> RungKind {
    rung.width &= !1;
    rung.height &= !1;
    let area = u64::from(rung.width) * u64::from(rung.height);
    let tallest = ladder
        .rungs
        .iter()
        .filter_map(|r| match r.kind {
            RungKind::Encode {
                height,
                bitrate_kbps,
                maxrate_kbps,
                bufsize_kbits,
            } => Some((height, bitrate_kbps, maxrate_kbps, bufsize_kbits)),
            RungKind::Source => None,
        })
        .max_by_key(|r| r.0);
    let (reference_area, bitrate, maxrate, bufsize) = match tallest {
        Some((height, bitrate, maxrate, bufsize)) => {
            let width = domain::ladder::scaled_width(rung.width, rung.height.max(1), height);
            (
                u64::from(width) * u64::from(height),
                bitrate,
                maxrate,
                bufsize,
            )
        }
        None => (1920 * 1080, 6000, 6420, 9000),
    };
    let scale = |kbps: u32| {
        let scaled = u64::from(kbps) * area / reference_area.max(1);
        u32::try_from(scaled.max(u64::from(kbps))).unwrap_or(u32::MAX)
    };
    RungKind::Encode {
        height: rung.height,
        bitrate_kbps: scale(bitrate),
        maxrate_kbps: scale(maxrate),
        bufsize_kbits: scale(bufsize),
    }
}
