//! The live pipeline in CMAF with LL-HLS parts (the default ladder), over an ffmpeg-made
//! FLV: what leaves it is in the order edges need, a segment's bytes are exactly its parts'
//! bytes, and ffprobe (the real CLI) reads `init.mp4` followed by a segment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use certs::c2pa::validate::{FragmentVerdict, InitVerdict, LiveValidator};
use certs::c2pa::{LiveSigner, ProvenanceCa};
use domain::c2pa::{bmff, vsi};
use domain::{Ladder, LiveEvent, Part, RenditionInfo, Segment, SessionId, StreamName};
use ingest::pipeline::{Pipeline, PipelineParams};
use ingest::IngestMetrics;
use testkit::ffmpeg::{self, TestPattern};

/// Runs the pipeline over a 5 s 640x360 test pattern with `ladder`, signing with
/// `provenance` if given: every event, in order.
fn run(ladder: Ladder, provenance: Option<Arc<LiveSigner>>) -> Vec<LiveEvent> {
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join("in.flv");
    TestPattern::new(640, 360, 30, 5)
        .fast()
        .write_flv(&flv)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let inputs = ingest::file::media_inputs(&flv).expect("reads the FLV");
    let params = PipelineParams {
        stream: StreamName::new("cam1").expect("valid"),
        session: SessionId(3),
        first_sequence: 10,
        discontinuity_sequence: 0,
        discontinuity: false,
        ladder: Arc::new(ladder),
        realtime: false,
        encoder_threads: 1,
        recorder: None,
        flags: Default::default(),
        provenance,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let pipeline = Pipeline::start(params, tx, IngestMetrics::default()).expect("starts");
    let collector = std::thread::spawn(move || {
        let mut events = Vec::new();
        while let Some(e) = rx.blocking_recv() {
            events.push(e);
        }
        events
    });
    let input = pipeline.sender();
    for i in inputs {
        input.blocking_send(i).expect("pipeline alive");
    }
    drop(input);
    let (_, error) = pipeline.finish();
    assert!(error.is_none(), "{error:?}");
    collector.join().expect("collector")
}

#[test]
fn segments_are_their_parts_and_ffprobe_reads_them() {
    let events = run(Ladder::default(), None);
    assert!(matches!(
        events.first(),
        Some(LiveEvent::SessionStarted { .. })
    ));

    let mut infos: BTreeMap<String, RenditionInfo> = BTreeMap::new();
    let mut announced = Vec::new();
    let mut parts: BTreeMap<(String, u64), Vec<Part>> = BTreeMap::new();
    let mut segments: BTreeMap<(String, u64), Segment> = BTreeMap::new();
    for e in &events {
        match e {
            LiveEvent::Rendition { info, .. } => {
                if !infos.contains_key(info.name.as_str()) {
                    announced.push(info.name.to_string());
                }
                infos.insert(info.name.to_string(), info.clone());
            }
            LiveEvent::Part(p) => {
                let r = p.meta.rendition.to_string();
                assert!(infos.contains_key(&r), "a part of {r} before its rendition");
                // Every rung is announced before any part leaves.
                assert_eq!(announced.len(), 2, "{announced:?}");
                let key = (r, p.meta.sequence);
                assert!(
                    !segments.contains_key(&key),
                    "a part after its segment {key:?}"
                );
                parts.entry(key).or_default().push(p.clone());
            }
            LiveEvent::Segment(s) => {
                segments.insert((s.meta.rendition.to_string(), s.meta.sequence), s.clone());
            }
            _ => {}
        }
    }
    // 640x360: the source and 360p, announced in ladder order.
    assert_eq!(announced, ["src", "360p"]);
    for info in infos.values() {
        assert!(info.init.is_some(), "{} has an init segment", info.name);
        assert_eq!(info.part_target_us, Some(333_000));
        assert!(
            info.codecs.as_str().starts_with("avc1."),
            "{:?}",
            info.codecs
        );
        assert!(
            info.codecs.as_str().ends_with(",mp4a.40.2"),
            "{:?}",
            info.codecs
        );
        assert!(
            (29.0..31.0).contains(&info.frame_rate),
            "{}",
            info.frame_rate
        );
    }
    assert!(segments.len() >= 4, "{} segments", segments.len());
    for (key, segment) in &segments {
        let ps = parts
            .get(key)
            .unwrap_or_else(|| panic!("no parts for {key:?}"));
        let indexes: Vec<u32> = ps.iter().map(|p| p.meta.index).collect();
        assert_eq!(indexes, (0..ps.len() as u32).collect::<Vec<_>>(), "{key:?}");
        assert!(ps[0].meta.independent);
        let mut joined = BytesMut::new();
        for p in ps {
            joined.extend_from_slice(&p.bytes);
            // The part target plus a frame, except at the end of the stream.
            assert!(
                p.meta.duration <= Duration::from_millis(333 + 34) || key.1 == max_seq(&segments),
                "{:?}",
                p.meta
            );
        }
        assert_eq!(
            joined.freeze(),
            segment.bytes,
            "{key:?}: a segment is its parts"
        );
        let sum: Duration = ps.iter().map(|p| p.meta.duration).sum();
        assert_eq!(sum, segment.meta.duration, "{key:?}");
    }

    // ffprobe reads init.mp4 followed by a segment, on both rungs.
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, info) in &infos {
        let segment = &segments[&(name.clone(), 11)];
        let init = info.init.as_ref().expect("init");
        let mut file: Vec<u8> = init.bytes().to_vec();
        file.extend_from_slice(&segment.bytes);
        let path = dir.path().join(format!("{name}-11.mp4"));
        std::fs::write(&path, &file).expect("write");
        let probe = ffmpeg::streams_and_frames(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let video = ffmpeg::stream(&probe, "video").expect("a video stream");
        assert_eq!(video["codec_name"], "h264");
        assert_eq!(video["width"].as_u64(), Some(u64::from(info.width)));
        let audio = ffmpeg::stream(&probe, "audio").expect("an audio stream");
        assert_eq!(audio["codec_name"], "aac");
        let frames = ffmpeg::frames(&probe, "video");
        let expected = segment.meta.duration.as_secs_f64() * 30.0;
        assert!(
            (frames.len() as f64 - expected).abs() <= 1.5,
            "{name}: {} video frames for {:?}",
            frames.len(),
            segment.meta.duration
        );
        assert_eq!(frames[0]["key_frame"], 1, "{name}: starts with a keyframe");
        assert!(
            !ffmpeg::frames(&probe, "audio").is_empty(),
            "{name}: audio decodes"
        );
    }
    for name in infos.keys() {
        let mine: Vec<&Segment> = segments
            .iter()
            .filter(|(k, _)| &k.0 == name)
            .map(|(_, s)| s)
            .collect();
        check_continuous(name, &mine);
    }
}

/// The `sequenceNumber` a fragment's first VSI signs.
fn signed_number(fragment: &[u8]) -> u64 {
    use domain::c2pa::{cose, decode, read};
    let found = read::vsi(fragment).expect("boxes").expect("a VSI");
    let sign1 = decode::read(found.message).expect("COSE");
    let fields = sign1.untag(cose::TAG_SIGN1).as_array().expect("COSE_Sign1");
    let payload = fields.get(2).and_then(|p| p.as_bytes()).expect("attached");
    let info = decode::read(payload).expect("segment info");
    info.get("sequenceNumber")
        .and_then(|n| n.as_uint())
        .expect("a number")
}

/// With a C2PA signer (docs/provenance.md): every init segment carries its manifest after
/// `ftyp`, every part opens with its VSI, every segment is its own VSI and its parts
/// joined, a validator takes them all (segments numbered by their place), and ffprobe
/// still reads `init.mp4` and a segment. With
/// `SEALCAST_C2PA_SAMPLE_DIR` set, the 360p rendition is written there (init.mp4,
/// seg_NNN.m4s, part_NNN_K.m4s, anchors.pem) for third-party validators.
#[test]
fn signed_media_carry_c2pa_and_still_play() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let ca = ProvenanceCa::generate("sealcast test", now).expect("ca");
    let claim = ca
        .issue("sealcast test", "ingest1", now)
        .expect("claim signer");
    let signer = Arc::new(LiveSigner::new(
        Arc::new(claim),
        now,
        Duration::from_secs(3600),
        1,
    ));
    let events = run(Ladder::default(), Some(signer));
    let mut inits = BTreeMap::new();
    let mut parts: BTreeMap<(String, u64), Vec<Part>> = BTreeMap::new();
    let mut segments: BTreeMap<(String, u64), Segment> = BTreeMap::new();
    for e in events {
        match e {
            LiveEvent::Rendition { info, .. } => {
                inits.insert(info.name.to_string(), info.init.expect("CMAF"));
            }
            LiveEvent::Part(p) => {
                let key = (p.meta.rendition.to_string(), p.meta.sequence);
                parts.entry(key).or_default().push(p);
            }
            LiveEvent::Segment(s) => {
                segments.insert((s.meta.rendition.to_string(), s.meta.sequence), s);
            }
            _ => {}
        }
    }
    for (name, init) in &inits {
        let kinds: Vec<[u8; 4]> = bmff::top_level(init.bytes())
            .expect("boxes")
            .iter()
            .map(|b| b.kind)
            .collect();
        assert_eq!(kinds, [*b"ftyp", *b"uuid", *b"moov"], "{name}");
    }
    assert!(segments.len() >= 4, "{} segments", segments.len());
    for (key, segment) in &segments {
        let ps = &parts[key];
        let mut joined = BytesMut::new();
        for p in ps {
            let first = bmff::top_level(&p.bytes).expect("part boxes")[0];
            assert!(
                vsi::is_vsi_emsg(&first),
                "{key:?}: a part opens with its VSI"
            );
            joined.extend_from_slice(&p.bytes);
        }
        let prefix = vsi::segment_prefix(&segment.bytes);
        assert_eq!(
            &segment.bytes[prefix.len()..],
            &joined[..],
            "{key:?}: a segment is its VSI and its parts"
        );
    }
    // A viewer's validator, trusting the CA, takes every rendition's init segment, then its
    // parts and its segments in order; the segments are numbered 1, 2, 3, … (one apart,
    // as the SVTA's validator asks), the parts by their `mfhd`.
    let root = certs::signing::RootKey::generate(certs::signing::SignatureAlgorithm::Ed25519)
        .expect("a root");
    for (name, init) in &inits {
        let mut v = LiveValidator::with_trust_anchors(
            root.public_key(),
            vec![ca.cert_der().expect("the CA's DER")],
        );
        let verdict = v
            .admit_init(init.bytes(), now)
            .expect("the init segment verifies");
        assert!(matches!(verdict, InitVerdict::Verified { .. }), "{name}");
        let mine = segments.iter().filter(|((r, _), _)| r == name);
        for (i, (key, segment)) in mine.enumerate() {
            for p in &parts[key] {
                let verdict = v.check_fragment(&p.bytes, true);
                assert!(
                    matches!(verdict, Ok(FragmentVerdict::Verified)),
                    "{key:?}: {verdict:?}"
                );
            }
            let verdict = v.check_fragment(&segment.bytes, false);
            assert!(
                matches!(verdict, Ok(FragmentVerdict::Verified)),
                "{key:?}: {verdict:?}"
            );
            assert_eq!(signed_number(&segment.bytes), i as u64 + 1, "{key:?}");
            // Its own VSI goes first unless it is one part whose `mfhd` is already its place.
            let ps = &parts[key];
            let first = bmff::first_fragment_sequence(&ps[0].bytes).expect("a moof");
            let said = ps.len() == 1 && u64::from(first) == i as u64 + 1;
            assert_eq!(
                vsi::segment_prefix(&segment.bytes).is_empty(),
                said,
                "{key:?}"
            );
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "360p".to_string();
    let init = &inits[&name];
    let (&(_, seq), segment) = segments
        .iter()
        .find(|((r, _), _)| r == &name)
        .expect("a 360p segment");
    let path = dir.path().join("signed.mp4");
    std::fs::write(
        &path,
        [init.bytes().as_ref(), segment.bytes.as_ref()].concat(),
    )
    .expect("write");
    let probe = ffmpeg::streams_and_frames(&path).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !ffmpeg::frames(&probe, "video").is_empty(),
        "segment {seq} decodes"
    );

    if let Some(out) = std::env::var_os("SEALCAST_C2PA_SAMPLE_DIR") {
        let out = std::path::PathBuf::from(out);
        std::fs::create_dir_all(&out).expect("dir");
        std::fs::write(out.join("init.mp4"), init.bytes()).expect("write");
        std::fs::write(out.join("anchors.pem"), ca.cert_pem()).expect("write");
        for ((r, seq), segment) in &segments {
            if r != &name {
                continue;
            }
            std::fs::write(out.join(format!("seg_{seq:03}.m4s")), &segment.bytes).expect("write");
            for p in &parts[&(r.clone(), *seq)] {
                let file = format!("part_{seq:03}_{}.m4s", p.meta.index);
                std::fs::write(out.join(file), &p.bytes).expect("write");
            }
        }
    }
}

/// The top-level or child boxes of `data`: (type, body).
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 8 {
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let kind: [u8; 4] = rest[4..8].try_into().expect("4 bytes");
        out.push((kind, &rest[8..len]));
        rest = &rest[len..];
    }
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Per fragment and track (1 video, 2 audio): its `tfdt` and the sum of its sample
/// durations, read back from the bytes.
fn fragment_times(segment: &[u8]) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    for (kind, moof) in boxes(segment) {
        if &kind != b"moof" {
            continue;
        }
        for (kind, traf) in boxes(moof) {
            if &kind != b"traf" {
                continue;
            }
            let (mut track, mut tfdt, mut total) = (0, 0, 0);
            for (kind, body) in boxes(traf) {
                match &kind {
                    b"tfhd" => track = u32_at(body, 4),
                    b"tfdt" => tfdt = u64::from_be_bytes(body[4..12].try_into().expect("8")),
                    b"trun" => {
                        let flags = u32_at(body, 0) & 0xFF_FFFF;
                        let count = u32_at(body, 4) as usize;
                        let per = if flags & 0x800 != 0 { 16 } else { 8 };
                        total = (0..count)
                            .map(|k| u64::from(u32_at(body, 12 + k * per)))
                            .sum();
                    }
                    _ => {}
                }
            }
            out.push((track, tfdt, total));
        }
    }
    out
}

/// A rung's fragments, read back from its segments in order, tile its timeline: each
/// video fragment's samples last exactly until the next fragment's `tfdt` (so a part's
/// last sample lasts until the next part's first), audio's within a fraction of a frame.
fn check_continuous(name: &str, segments: &[&Segment]) {
    let times: Vec<(u32, u64, u64)> = segments
        .iter()
        .flat_map(|s| fragment_times(&s.bytes))
        .collect();
    for track in [1, 2] {
        let mine: Vec<(u64, u64)> = times
            .iter()
            .filter(|t| t.0 == track)
            .map(|t| (t.1, t.2))
            .collect();
        assert!(
            mine.len() > segments.len(),
            "{name}: track {track}: {mine:?}"
        );
        for w in mine.windows(2) {
            let end = w[0].0 + w[0].1;
            if track == 1 {
                assert_eq!(end, w[1].0, "{name}: video fragments {w:?}");
            } else {
                assert!(end.abs_diff(w[1].0) < 512, "{name}: audio fragments {w:?}");
            }
        }
    }
}

fn max_seq(segments: &BTreeMap<(String, u64), Segment>) -> u64 {
    segments.keys().map(|k| k.1).max().unwrap_or(0)
}

#[test]
fn mpeg_ts_ladders_have_no_parts_and_no_init_segment() {
    let ladder = Ladder {
        format: domain::SegmentFormat::Ts,
        ..Ladder::default()
    };
    let events = run(ladder, None);
    assert!(!events.iter().any(|e| matches!(e, LiveEvent::Part(_))));
    for e in &events {
        match e {
            LiveEvent::Rendition { info, .. } => {
                assert_eq!((&info.init, info.part_target_us), (&None, None));
            }
            LiveEvent::Segment(s) => assert_eq!(s.bytes.first(), Some(&0x47)),
            _ => {}
        }
    }
}

/// `sealcast ladder` with the default (CMAF) ladder: `init.mp4`, `{seq}.m4s` and a playlist
/// that maps them, which ffprobe plays through from start to end.
#[test]
fn a_file_becomes_a_cmaf_ladder_that_ffprobe_plays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join("in.flv");
    TestPattern::new(640, 360, 30, 5)
        .fast()
        .write_flv(&flv)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let report = ingest::file::transcode_file(&flv, &out, Arc::new(Ladder::default()), 1)
        .expect("transcodes");
    for name in ["src", "360p"] {
        let index = out.join(name).join("index.m3u8");
        let text = std::fs::read(&index).expect("playlist");
        let playlist = m3u8_rs::parse_media_playlist_res(&text).expect("parses");
        assert_eq!(playlist.segments.len() as u64, report.segments[name]);
        assert_eq!(
            playlist.segments[0].map.as_ref().map(|m| m.uri.as_str()),
            Some("init.mp4")
        );
        assert!(playlist.segments.iter().all(|s| s.uri.ends_with(".m4s")));
        let probe = ffmpeg::ffprobe(
            &index,
            &["-select_streams", "v", "-count_frames", "-show_streams"],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let frames: f64 = probe["streams"][0]["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .expect("frames counted");
        assert!((frames - 150.0).abs() <= 2.0, "{name}: {frames} frames");
    }
}
