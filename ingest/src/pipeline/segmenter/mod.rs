//! Cuts one rung's packets into segments and, for LL-HLS, each segment into parts, sans-IO.
//!
//! Boundaries are planned once per stream (see [`crate::pipeline`]) and arrive here as a
//! `cut` on the keyframe that starts a segment, so every rung cuts at the same presentation
//! time. Audio is shared by all rungs but reaches each one at a different moment (an
//! encoded rung's video lags its audio by the encoder's delay; the source rung's audio
//! interleaves with its video), so audio frames wait in a queue and are given to a part
//! only when that part closes: every frame with `start <= pts < end` goes to it. A part
//! closes once audio past its end has been seen (or the stream has no audio, or audio has
//! stalled for a second of video), which makes the audio split identical on every rung.
//!
//! Without a part target a segment is one part, and only segments come out. With one, a
//! part also ends before the first video packet that would take it to the target: whose
//! decode time plus one frame interval (from the packet before it) reaches the part's start
//! plus the target. That packet's decode time, never before the part's start, is the
//! boundary. So with a steady frame rate no part is longer than the target
//! (`EXT-X-PART-INF:PART-TARGET` is a maximum), and parts end at every segment boundary. Each part comes out
//! as soon as it closes ([`Closed::Part`]); after the last part of a segment comes the
//! segment itself ([`Closed::Segment`]), holding exactly the samples of its parts.

use std::collections::VecDeque;

use bytes::Bytes;

#[cfg(test)]
mod tests;

/// How far video may run past a boundary before a part closes without audio past it.
const AUDIO_STALL_MS: i64 = 1000;
/// Audio kept waiting for video at most; older frames are dropped (video has stalled).
const MAX_QUEUED_AUDIO_MS: i64 = 30_000;
/// A stream that ends just after a boundary leaves a last segment of a frame or two,
/// often without audio; players handle such a sliver badly (hls.js never signals the end
/// of a recording that ends with one). Shorter than this, and with none of its parts out
/// yet, it is left out: a stream loses at most this much of its very end.
pub(crate) const MIN_LAST_SEGMENT_MS: i64 = 250;

/// One encoded video access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoPacket {
    /// Presentation time in milliseconds.
    pub(crate) pts_ms: i64,
    /// Decode time in milliseconds.
    pub(crate) dts_ms: i64,
    /// Whether it is an IDR picture.
    pub(crate) keyframe: bool,
    /// Annex B bytes.
    pub(crate) data: Bytes,
}

/// One encoded audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioFrame {
    /// Presentation time in milliseconds.
    pub(crate) pts_ms: i64,
    /// ADTS frame bytes.
    pub(crate) data: Bytes,
}

/// A segment's packets, ready to be muxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClosedSegment {
    /// Media sequence number, as planned.
    pub(crate) sequence: u64,
    /// Presentation time of the boundary that opened it.
    pub(crate) start_pts_ms: i64,
    /// Presentation time of the boundary that closed it (or the end of the stream).
    pub(crate) end_pts_ms: i64,
    /// Video in decode order, starting with the boundary keyframe.
    pub(crate) video: Vec<VideoPacket>,
    /// Audio with `start <= pts < end`, in order.
    pub(crate) audio: Vec<AudioFrame>,
    /// Decode time of the video packet after it (`None` at the end of the stream): the
    /// duration of its last video sample.
    pub(crate) next_video_dts_ms: Option<i64>,
    /// How many parts it was cut into (1 without a part target).
    pub(crate) parts: u32,
}

/// An LL-HLS part's packets, ready to be muxed as one fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClosedPart {
    /// Media sequence number of its segment.
    pub(crate) sequence: u64,
    /// Its index in the segment, from 0.
    pub(crate) index: u32,
    /// The boundary that opened it.
    pub(crate) start_pts_ms: i64,
    /// The boundary that closed it.
    pub(crate) end_pts_ms: i64,
    /// Whether its first video packet is a keyframe (always so for part 0).
    pub(crate) independent: bool,
    /// Whether it is the last part of its segment.
    pub(crate) last: bool,
    /// Video in decode order.
    pub(crate) video: Vec<VideoPacket>,
    /// Audio with `start <= pts < end`, in order.
    pub(crate) audio: Vec<AudioFrame>,
    /// Decode time of the video packet after it (`None` at the end of the stream).
    pub(crate) next_video_dts_ms: Option<i64>,
}

/// What the segmenter hands out, in order: every part of a segment, then the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Closed {
    /// A part closed (only with a part target).
    Part(ClosedPart),
    /// A segment closed; its parts came out before it.
    Segment(ClosedSegment),
}

#[derive(Debug)]
struct Open {
    sequence: u64,
    index: u32,
    start_pts_ms: i64,
    video: Vec<VideoPacket>,
}

#[derive(Debug)]
struct Closing {
    open: Open,
    end_pts_ms: i64,
    last: bool,
    next_video_dts_ms: Option<i64>,
}

/// The segment whose parts are being closed.
#[derive(Debug)]
struct Gathering {
    sequence: u64,
    start_pts_ms: i64,
    video: Vec<VideoPacket>,
    audio: Vec<AudioFrame>,
    parts: u32,
}

/// Segments one rung.
#[derive(Debug)]
pub(crate) struct RungSegmenter {
    has_audio: bool,
    /// LL-HLS part target; `None` makes every segment one part and hands out no parts.
    part_target_ms: Option<i64>,
    /// The part being filled.
    current: Option<Open>,
    /// Parts whose end is known, waiting for the audio up to their end.
    closing: VecDeque<Closing>,
    /// The parts of the segment being closed, gathered into it.
    gathering: Option<Gathering>,
    audio: VecDeque<AudioFrame>,
    /// Highest video decode time seen: tells when audio has stalled.
    video_dts_ms: i64,
    /// Highest audio pts seen: tells when every frame before a boundary has arrived.
    audio_pts_ms: Option<i64>,
}

impl RungSegmenter {
    /// A segmenter for a rung whose stream does (`has_audio`) or does not carry audio,
    /// without parts (the live pipeline always says which; tests often need none).
    #[cfg(test)]
    pub(crate) fn new(has_audio: bool) -> Self {
        Self::with_parts(has_audio, None)
    }

    /// A segmenter that also cuts parts of about `part_target_ms` (when `Some`).
    pub(crate) fn with_parts(has_audio: bool, part_target_ms: Option<i64>) -> Self {
        RungSegmenter {
            has_audio,
            part_target_ms,
            current: None,
            closing: VecDeque::new(),
            gathering: None,
            audio: VecDeque::new(),
            video_dts_ms: i64::MIN,
            audio_pts_ms: None,
        }
    }

    /// Takes a video packet; `cut` is the sequence number of the segment it starts, if it is
    /// a planned boundary. Video before the first boundary is dropped (it cannot be decoded
    /// on its own).
    pub(crate) fn push_video(&mut self, packet: VideoPacket, cut: Option<u64>) -> Vec<Closed> {
        let mut out = Vec::new();
        self.video_dts_ms = self.video_dts_ms.max(packet.dts_ms);
        if let Some(sequence) = cut {
            let boundary = packet.pts_ms;
            match self.current.take() {
                Some(open) => self.closing.push_back(Closing {
                    open,
                    end_pts_ms: boundary,
                    last: true,
                    next_video_dts_ms: Some(packet.dts_ms),
                }),
                None => self.audio.retain(|a| a.pts_ms >= boundary),
            }
            self.current = Some(Open {
                sequence,
                index: 0,
                start_pts_ms: boundary,
                video: vec![packet],
            });
        } else if let Some(open) = self.current.as_mut() {
            let interval = open
                .video
                .last()
                .map_or(0, |last| (packet.dts_ms - last.dts_ms).max(0));
            let part_ends = self.part_target_ms.is_some_and(|target| {
                packet.dts_ms > open.start_pts_ms
                    && packet.dts_ms.saturating_add(interval)
                        >= open.start_pts_ms.saturating_add(target)
            });
            if part_ends {
                let boundary = packet.dts_ms.max(open.start_pts_ms);
                let next = Open {
                    sequence: open.sequence,
                    index: open.index + 1,
                    start_pts_ms: boundary,
                    video: Vec::new(),
                };
                let open = std::mem::replace(open, next);
                self.closing.push_back(Closing {
                    open,
                    end_pts_ms: boundary,
                    last: false,
                    next_video_dts_ms: Some(packet.dts_ms),
                });
            }
            if let Some(open) = self.current.as_mut() {
                open.video.push(packet);
            }
        }
        self.poll(&mut out);
        out
    }

    /// Takes an audio frame.
    pub(crate) fn push_audio(&mut self, frame: AudioFrame) -> Vec<Closed> {
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

    /// Ends the rung at `end_pts_ms` (the end of the last frame): closes what is open (a
    /// last segment shorter than [`MIN_LAST_SEGMENT_MS`], none of it out yet, is dropped).
    pub(crate) fn finish(&mut self, end_pts_ms: i64) -> Vec<Closed> {
        let mut out = Vec::new();
        while let Some(closing) = self.closing.pop_front() {
            self.close(closing, &mut out);
        }
        if let Some(open) = self.current.take() {
            let end = end_pts_ms.max(open.start_pts_ms + 1);
            if open.index == 0 && end - open.start_pts_ms < MIN_LAST_SEGMENT_MS {
                self.audio.clear();
                return out;
            }
            self.close(
                Closing {
                    open,
                    end_pts_ms: end,
                    last: true,
                    next_video_dts_ms: None,
                },
                &mut out,
            );
        }
        self.audio.clear();
        out
    }

    fn poll(&mut self, out: &mut Vec<Closed>) {
        while let Some(closing) = self.closing.front() {
            let end = closing.end_pts_ms;
            let audio_complete = !self.has_audio
                || self.audio_pts_ms.is_some_and(|p| p >= end)
                || self.video_dts_ms >= end.saturating_add(AUDIO_STALL_MS);
            if !audio_complete {
                return;
            }
            if let Some(closing) = self.closing.pop_front() {
                self.close(closing, out);
            }
        }
    }

    fn close(&mut self, closing: Closing, out: &mut Vec<Closed>) {
        let start = closing.open.start_pts_ms;
        // A degenerate boundary (a part boundary past the next keyframe's pts, which only
        // odd timestamps make) still leaves every part at least a millisecond long.
        let end = closing.end_pts_ms.max(start + 1);
        // Frames older than the part belong to one already sent: too late, drop them.
        while self.audio.front().is_some_and(|a| a.pts_ms < start) {
            self.audio.pop_front();
        }
        let mut audio = Vec::new();
        while self.audio.front().is_some_and(|a| a.pts_ms < end) {
            if let Some(frame) = self.audio.pop_front() {
                audio.push(frame);
            }
        }
        let open = closing.open;
        if open.index == 0 || self.gathering.is_none() {
            self.gathering = Some(Gathering {
                sequence: open.sequence,
                start_pts_ms: start,
                video: Vec::new(),
                audio: Vec::new(),
                parts: 0,
            });
        }
        let Some(gathering) = self.gathering.as_mut() else {
            return;
        };
        gathering.parts += 1;
        if self.part_target_ms.is_some() {
            gathering.video.extend(open.video.iter().cloned());
            gathering.audio.extend(audio.iter().cloned());
            out.push(Closed::Part(ClosedPart {
                sequence: open.sequence,
                index: open.index,
                start_pts_ms: start,
                end_pts_ms: end,
                independent: open.video.first().is_some_and(|v| v.keyframe),
                last: closing.last,
                video: open.video,
                audio,
                next_video_dts_ms: closing.next_video_dts_ms,
            }));
        } else {
            gathering.video.extend(open.video);
            gathering.audio.extend(audio);
        }
        if closing.last {
            if let Some(g) = self.gathering.take() {
                out.push(Closed::Segment(ClosedSegment {
                    sequence: g.sequence,
                    start_pts_ms: g.start_pts_ms,
                    end_pts_ms: end,
                    video: g.video,
                    audio: g.audio,
                    next_video_dts_ms: closing.next_video_dts_ms,
                    parts: g.parts,
                }));
            }
        }
    }
}
