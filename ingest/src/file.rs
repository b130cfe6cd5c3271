//! The live pipeline over an FLV file instead of an RTMP connection, as fast as the
//! machine allows: what `sealcast ladder` and `bench/ladder.sh` run, and a way to look at
//! the ladder without a publisher.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use container::flv::{FlvReader, FlvTag, TagKind};
use domain::hls::{render_master, Entry, MediaWindow, Variant};
use domain::{
    BitrateMeter, Ladder, LiveEvent, RenditionInfo, RenditionName, SegmentFormat, SessionId,
    StreamName,
};
use intake::media::MediaInput;
use tokio::sync::mpsc;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::pipeline::{Pipeline, PipelineParams};

/// What a file transcode produced.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// Segments written per rendition.
    pub segments: HashMap<String, u64>,
    /// Bytes written per rendition.
    pub bytes: HashMap<String, u64>,
    /// Media seconds per rendition.
    pub seconds: HashMap<String, f64>,
}

/// Every tag of the FLV file `input` as the media a pipeline takes, in file order (what
/// an RTMP publisher of that file would send). For tests and tools; blocking.
pub fn media_inputs(input: &Path) -> Result<Vec<MediaInput>, IngestError> {
    let mut reader = FlvReader::new(BufReader::new(File::open(input)?))?;
    let mut out = Vec::new();
    while let Some(tag) = reader.next_tag()? {
        out.extend(tag_input(&tag)?);
    }
    Ok(out)
}

/// The media a pipeline takes from one FLV tag, if any (script data carries none).
fn tag_input(tag: &FlvTag) -> Result<Option<MediaInput>, IngestError> {
    let ts = i64::from(tag.timestamp_ms);
    Ok(match tag.kind {
        TagKind::Video => intake::rtmp::video(&tag.body, ts)?,
        TagKind::Audio => intake::rtmp::audio(&tag.body, ts)?,
        TagKind::Script => None,
    })
}

/// Transcodes `input` (FLV with H.264, optionally AAC) into `out_dir/{rendition}/{seq}.ts`
/// (MPEG-TS ladders) or `init.mp4` and `{seq}.m4s` (CMAF), with an `index.m3u8` per
/// rendition and a `master.m3u8`. Blocking.
pub fn transcode_file(
    input: &Path,
    out_dir: &Path,
    ladder: Arc<Ladder>,
    encoder_threads: usize,
) -> Result<FileReport, IngestError> {
    let mut reader = FlvReader::new(BufReader::new(File::open(input)?))?;
    let stream =
        StreamName::new("file").map_err(|_| IngestError::PipelineStopped("invalid stream name"))?;
    let params = PipelineParams {
        stream,
        session: SessionId(1),
        first_sequence: 0,
        discontinuity_sequence: 0,
        discontinuity: false,
        ladder: Arc::clone(&ladder),
        realtime: false,
        encoder_threads,
        recorder: None,
        flags: Default::default(),
        provenance: None,
    };
    let (events_tx, mut events_rx) = mpsc::channel(64);
    let pipeline = Pipeline::start(params, events_tx, IngestMetrics::default())?;
    let out_dir = out_dir.to_path_buf();
    let target = ladder.segment_target;
    let writer = std::thread::spawn(move || -> Result<FileReport, IngestError> {
        let mut writer = DirWriter {
            dir: out_dir,
            target,
            renditions: Vec::new(),
            report: FileReport::default(),
        };
        while let Some(event) = events_rx.blocking_recv() {
            writer.apply(event)?;
        }
        writer.finish()?;
        Ok(writer.report)
    });
    let input_tx = pipeline.sender();
    let mut feed_error = None;
    loop {
        let tag = match reader.next_tag() {
            Ok(Some(tag)) => tag,
            Ok(None) => break,
            Err(e) => {
                feed_error = Some(IngestError::from(e));
                break;
            }
        };
        match tag_input(&tag) {
            Ok(Some(input)) => {
                if input_tx.blocking_send(input).is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                feed_error = Some(e);
                break;
            }
        }
    }
    drop(input_tx);
    let (_, pipeline_error) = pipeline.finish();
    let report = writer
        .join()
        .map_err(|_| IngestError::PipelineStopped("the file writer panicked"))??;
    if let Some(e) = feed_error.or(pipeline_error) {
        return Err(e);
    }
    Ok(report)
}

struct DirWriter {
    dir: PathBuf,
    target: std::time::Duration,
    renditions: Vec<(RenditionInfo, MediaWindow, BitrateMeter)>,
    report: FileReport,
}

impl DirWriter {
    fn rendition(
        &mut self,
        name: &RenditionName,
    ) -> Option<&mut (RenditionInfo, MediaWindow, BitrateMeter)> {
        self.renditions.iter_mut().find(|r| &r.0.name == name)
    }

    fn apply(&mut self, event: LiveEvent) -> Result<(), IngestError> {
        match event {
            LiveEvent::Rendition { info, .. } => {
                std::fs::create_dir_all(self.dir.join(info.name.as_str()))?;
                if let Some(init) = &info.init {
                    std::fs::write(
                        self.dir.join(info.name.as_str()).join("init.mp4"),
                        init.bytes(),
                    )?;
                }
                match self.rendition(&info.name) {
                    Some(r) => r.0 = info,
                    None => {
                        let window = MediaWindow::unbounded(self.target);
                        self.renditions
                            .push((info, window, BitrateMeter::default()));
                    }
                }
            }
            LiveEvent::Segment(seg) => {
                let extension = self
                    .rendition(&seg.meta.rendition)
                    .map_or("ts", |r| r.0.format().extension());
                let path = self
                    .dir
                    .join(seg.meta.rendition.as_str())
                    .join(format!("{}.{extension}", seg.meta.sequence));
                std::fs::write(&path, &seg.bytes)?;
                let name = seg.meta.rendition.to_string();
                *self.report.segments.entry(name.clone()).or_default() += 1;
                *self.report.bytes.entry(name.clone()).or_default() += seg.bytes.len() as u64;
                *self.report.seconds.entry(name).or_default() += seg.meta.duration.as_secs_f64();
                if let Some(r) = self.rendition(&seg.meta.rendition) {
                    r.2.record(seg.bytes.len(), seg.meta.duration);
                    let _ = r.1.push(Entry::published(&seg.meta));
                }
            }
            // Parts are for live edges; on disk their segments say it all.
            LiveEvent::Part(_)
            | LiveEvent::Thumbnail(_)
            | LiveEvent::SessionStarted { .. }
            | LiveEvent::RenditionDropped { .. }
            | LiveEvent::Ended { .. } => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), IngestError> {
        let mut variants = Vec::new();
        for (info, window, meter) in &mut self.renditions {
            // A finished recording's playlists, as an edge writes them: EXT-X-VERSION 7
            // and EXTINF to five decimals for CMAF where this file used to write 6 and
            // m3u8-rs's precision; every player of fMP4 HLS reads both.
            let playlist = match info.format() {
                SegmentFormat::Cmaf => window.render_cmaf_vod(),
                SegmentFormat::Ts => window.render_vod(),
            };
            std::fs::write(
                self.dir.join(info.name.as_str()).join("index.m3u8"),
                playlist,
            )?;
            variants.push(Variant {
                info: info.clone(),
                peak_bps: meter.peak_bps(),
                average_bps: meter.average_bps(),
            });
        }
        std::fs::write(self.dir.join("master.m3u8"), render_master(&variants))?;
        Ok(())
    }
}
