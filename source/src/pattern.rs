//! The moving picture: FFmpeg's `testsrc2` pattern from a source-only filter graph.

use ffmpeg::{filter, format, frame};
use ffmpeg_next as ffmpeg;

use crate::SourceError;

/// Name of the buffersink inside the graph.
const SINK: &str = "out";

/// A `testsrc2=size=WxH:rate=R,format=yuv420p` graph feeding a buffersink; each pull
/// returns the next frame.
pub(crate) struct Pattern {
    graph: filter::Graph,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern").finish_non_exhaustive()
    }
}

fn pattern_err(stage: &'static str) -> impl FnOnce(ffmpeg::Error) -> SourceError {
    move |source| SourceError::Pattern { stage, source }
}

impl Pattern {
    pub(crate) fn new(width: u32, height: u32, fps: u32) -> Result<Self, SourceError> {
        if filter::find("testsrc2").is_none() {
            return Err(SourceError::MissingComponent(
                "testsrc2 filter (libavfilter)",
            ));
        }
        let sink =
            filter::find("buffersink").ok_or(SourceError::MissingComponent("buffersink filter"))?;
        let mut graph = filter::Graph::new();
        graph
            .add(&sink, SINK, "")
            .map_err(pattern_err("add buffersink"))?;
        // The graph has no buffer source: `testsrc2` has no inputs, so the only open
        // link is the chain's output, which `input(SINK)` connects to the sink
        // (ffmpeg-next's `input`/`output` name the graph's open pads from the
        // description's point of view, as in avfilter_graph_parse_ptr).
        let spec = format!("testsrc2=size={width}x{height}:rate={fps},format=yuv420p");
        graph
            .input(SINK, 0)
            .map_err(pattern_err("link buffersink"))?
            .parse(&spec)
            .map_err(pattern_err("parse"))?;
        graph.validate().map_err(pattern_err("configure"))?;
        Ok(Self { graph })
    }

    /// The next pattern frame, in a buffer nobody else references (testsrc2 draws
    /// every frame into a fresh pool buffer and keeps no reference), so the caller
    /// may draw on it.
    pub(crate) fn next_frame(&mut self) -> Result<frame::Video, SourceError> {
        let mut sink = self
            .graph
            .get(SINK)
            .ok_or(SourceError::MissingComponent("buffersink filter"))?;
        let mut frame = frame::Video::empty();
        sink.sink()
            .frame(&mut frame)
            .map_err(pattern_err("pull frame"))?;
        if frame.format() != format::Pixel::YUV420P {
            return Err(SourceError::PatternFormat(format!("{:?}", frame.format())));
        }
        Ok(frame)
    }
}
