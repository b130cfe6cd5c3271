//! One rung's output side: [`RungMuxer`] turns what the segmenter closes into labelled
//! segments and parts (MPEG-TS, or CMAF through [`super::cmaf`], which needs nothing from
//! here but the [`Clock`]), its description first.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certs::c2pa::LiveSigner;
use container::aac::AacConfig;
use container::h264;
use container::ts::{TsAudio, TsMuxer, TsVideo};
use domain::{
    Codecs, Part, PartMeta, PlannedRung, RenditionInfo, RenditionName, RungKind, Segment,
    SegmentFormat, SegmentMeta,
};

use crate::error::IngestError;

use super::clock::Clock;
use super::cmaf_writer::{CmafAudio, CmafWriter, Provenance, VideoSource};
use super::emit::RungOutput;
use super::params::PipelineParams;
use super::segmenter::{Closed, ClosedPart, ClosedSegment, VideoPacket};
use super::source::SourceVideo;

/// How a rung's segments are packaged.
pub(super) enum Container {
    /// MPEG-TS, no parts.
    Ts(TsMuxer),
    /// CMAF: an init segment, then fragments (one per part, or one per segment). Boxed:
    /// the writer is several times the size of the TS muxer.
    Cmaf(Box<CmafWriter>),
}

/// What the rendition's description says about its video.
#[derive(Debug, Clone)]
pub(super) struct VideoDesc {
    /// Picture size.
    pub(super) width: u32,
    pub(super) height: u32,
    /// RFC 6381 codec id; `None`: read from the SPS before the first keyframe (x264).
    pub(super) codec: Option<String>,
}

/// What every rung's [`RungMuxer`] is built from, once the first keyframe is known.
pub(super) struct RungOutputSpec<'a> {
    /// The source's picture size and decoder configuration.
    pub(super) source: (u32, u32, &'a SourceVideo),
    pub(super) clock: Clock,
    pub(super) params: &'a Arc<PipelineParams>,
    /// The AAC configuration and the AudioSpecificConfig it was parsed from.
    pub(super) audio: Option<(AacConfig, Bytes)>,
}

impl RungOutputSpec<'_> {
    /// The muxer of rung `index`: MPEG-TS or CMAF as the ladder says, with parts when it
    /// has a part target (CMAF only). A source rung here passes the publisher's codec
    /// through (the coordinator made one it cannot pass an encoded rung).
    pub(super) fn muxer(&self, index: usize, rung: &PlannedRung) -> RungMuxer {
        let (width, height, publisher) = self.source;
        let format = self.params.ladder.format;
        let (video, source) = match &rung.kind {
            RungKind::Source => (
                VideoDesc {
                    width,
                    height,
                    codec: Some(publisher.codec_string()),
                },
                VideoSource::Publisher(publisher.clone()),
            ),
            RungKind::Encode { .. } => (
                VideoDesc {
                    width: rung.width,
                    height: rung.height,
                    codec: None,
                },
                VideoSource::InBand,
            ),
        };
        let hevc = matches!(source, VideoSource::Publisher(SourceVideo::Hevc(_)));
        let container = match format {
            SegmentFormat::Ts if hevc => Container::Ts(TsMuxer::hevc(self.audio.is_some())),
            SegmentFormat::Ts => Container::Ts(TsMuxer::new(self.audio.is_some())),
            SegmentFormat::Cmaf => {
                let audio = self.audio.as_ref().map(|(config, asc)| CmafAudio {
                    config: *config,
                    asc: asc.clone(),
                });
                let p = &self.params;
                let provenance = p.provenance.as_ref().map(|signer| {
                    let (stream, session) = (p.stream.as_str(), p.session.to_string());
                    let rendition = rung.name.as_str();
                    Provenance {
                        signer: Arc::clone(signer),
                        label: LiveSigner::manifest_label(stream, &session, rendition),
                        title: format!("{stream} {rendition}"),
                        extra: vec![certs::c2pa::stream_assertion(stream, &session, rendition)],
                    }
                });
                Container::Cmaf(Box::new(CmafWriter::new(source, audio, provenance)))
            }
        };
        RungMuxer {
            index,
            name: rung.name.clone(),
            container,
            clock: self.clock,
            params: Arc::clone(self.params),
            audio_codec: self.audio.as_ref().map(|(config, _)| config.codec_string()),
            video,
            // `Ladder::parts` is `None` for MPEG-TS too; parts need CMAF.
            part_target: self
                .params
                .ladder
                .parts()
                .filter(|_| format == SegmentFormat::Cmaf),
            announced: None,
            rate_settled: false,
        }
    }
}

/// Turns a rung's closed segments and parts into labelled ones, its description first.
pub(super) struct RungMuxer {
    pub(super) index: usize,
    pub(super) name: RenditionName,
    pub(super) container: Container,
    pub(super) clock: Clock,
    pub(super) params: Arc<PipelineParams>,
    pub(super) audio_codec: Option<String>,
    pub(super) video: VideoDesc,
    /// The LL-HLS part target, when parts are cut (CMAF only).
    pub(super) part_target: Option<Duration>,
    /// What was announced, once it was: with parts it is measured over the first part and
    /// measured again (and re-sent if it differs) over the first segment.
    pub(super) announced: Option<RenditionInfo>,
    /// Whether the frame rate was measured over a whole segment.
    pub(super) rate_settled: bool,
}

impl RungMuxer {
    /// Hands one closed part or segment on (the rung's description before its first).
    pub(super) fn output(
        &mut self,
        closed: Closed,
        out: &std_mpsc::Sender<RungOutput>,
    ) -> Result<(), IngestError> {
        match closed {
            Closed::Part(part) => {
                self.announce(&part.video, part.start_pts_ms, part.end_pts_ms, out)?;
                let part = self.part(part)?;
                let _ = out.send(RungOutput::Part(self.index, part));
            }
            Closed::Segment(closed) => {
                self.announce(&closed.video, closed.start_pts_ms, closed.end_pts_ms, out)?;
                self.settle_rate(&closed, out);
                let segment = self.mux(closed)?;
                let _ = out.send(RungOutput::Segment(self.index, segment));
            }
        }
        Ok(())
    }

    fn part(&mut self, closed: ClosedPart) -> Result<Part, IngestError> {
        let Container::Cmaf(writer) = &mut self.container else {
            return Err(IngestError::PipelineStopped("parts without CMAF"));
        };
        let bytes = writer.fragment(
            self.clock,
            &closed.video,
            &closed.audio,
            closed.next_video_dts_ms,
        )?;
        Ok(Part {
            meta: PartMeta {
                stream: self.params.stream.clone(),
                rendition: self.name.clone(),
                session: self.params.session,
                sequence: closed.sequence,
                index: closed.index,
                discontinuity_sequence: self.params.discontinuity_sequence,
                independent: closed.independent,
                duration: millis(closed.end_pts_ms - closed.start_pts_ms),
                program_date_time_ms: self.clock.wall_ms(closed.start_pts_ms),
            },
            bytes,
        })
    }

    fn mux(&mut self, closed: ClosedSegment) -> Result<Segment, IngestError> {
        let clock = self.clock;
        let bytes = match &mut self.container {
            Container::Ts(muxer) => {
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
                muxer.segment(&video, &audio)
            }
            Container::Cmaf(writer) => {
                if self.part_target.is_none() {
                    writer.fragment(
                        clock,
                        &closed.video,
                        &closed.audio,
                        closed.next_video_dts_ms,
                    )?;
                }
                // With parts, their fragments are the segment, byte for byte (after the
                // segment's own VSI when the session signs).
                writer.take_segment()?
            }
        };
        let first = closed.sequence == self.params.first_sequence;
        Ok(Segment {
            meta: SegmentMeta {
                stream: self.params.stream.clone(),
                rendition: self.name.clone(),
                session: self.params.session,
                sequence: closed.sequence,
                discontinuity_sequence: self.params.discontinuity_sequence,
                discontinuity: first && self.params.discontinuity,
                duration: millis(closed.end_pts_ms - closed.start_pts_ms),
                start_pts_90k: clock.to_90k(closed.start_pts_ms),
            },
            bytes,
        })
    }

    /// Sends the rendition's description before its first part or segment, measured from
    /// that one (its frame rate) and its first keyframe (codec, init segment).
    fn announce(
        &mut self,
        video: &[VideoPacket],
        start_pts_ms: i64,
        end_pts_ms: i64,
        out: &std_mpsc::Sender<RungOutput>,
    ) -> Result<(), IngestError> {
        if self.announced.is_some() {
            return Ok(());
        }
        let keyframe = video.iter().find(|v| v.keyframe).map(|v| &v.data[..]);
        let video_codec = self
            .video
            .codec
            .clone()
            .or_else(|| keyframe.and_then(h264::codec_string_from_annexb))
            .unwrap_or_else(|| "avc1.640028".to_owned());
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
        let init = match &mut self.container {
            Container::Ts(_) => None,
            Container::Cmaf(writer) => Some(writer.init(
                keyframe.unwrap_or_default(),
                self.video.width,
                self.video.height,
            )?),
        };
        let info = RenditionInfo {
            name: self.name.clone(),
            width: self.video.width,
            height: self.video.height,
            frame_rate: frame_rate(video.len(), start_pts_ms, end_pts_ms),
            codecs,
            part_target_us: init
                .as_ref()
                .and(self.part_target)
                .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX)),
            init,
        };
        let _ = out.send(RungOutput::Info(self.index, info.clone()));
        self.announced = Some(info);
        Ok(())
    }

    /// With parts, the description went out measured over one part: measure the frame rate
    /// again over the first segment and re-send it if it is noticeably off.
    fn settle_rate(&mut self, closed: &ClosedSegment, out: &std_mpsc::Sender<RungOutput>) {
        if std::mem::replace(&mut self.rate_settled, true) || self.part_target.is_none() {
            return;
        }
        let Some(info) = &mut self.announced else {
            return;
        };
        let rate = frame_rate(closed.video.len(), closed.start_pts_ms, closed.end_pts_ms);
        if (rate - info.frame_rate).abs() > 0.5 {
            info.frame_rate = rate;
            let _ = out.send(RungOutput::Info(self.index, info.clone()));
        }
    }
}

/// Frames per second over `frames` frames from `start` to `end`.
fn frame_rate(frames: usize, start_pts_ms: i64, end_pts_ms: i64) -> f64 {
    let span_ms = (end_pts_ms - start_pts_ms).max(1) as f64;
    (frames as f64 * 1000.0 / span_ms).clamp(0.001, domain::segment::MAX_FRAME_RATE)
}

/// The segmenter's part target in milliseconds.
pub(super) fn part_target_ms(target: Option<Duration>) -> Option<i64> {
    target.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// A non-negative millisecond span as a duration.
pub(super) fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
