//! The recorder against a temporary directory: finishing, retention, crashes and
//! restarts.

use domain::time::WallClock;
use std::time::Duration;

use bytes::Bytes;
use domain::SegmentMeta;

use super::*;

fn segment(seq: u64) -> Segment {
    Segment {
        meta: SegmentMeta {
            stream: StreamName::new("a").expect("valid"),
            rendition: RenditionName::new("src").expect("valid"),
            session: SessionId(7),
            sequence: seq,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_secs(2),
            start_pts_90k: 0,
        },
        bytes: Bytes::from(vec![0x47; 188 * (seq as usize + 1)]),
    }
}

#[test]
fn a_stream_becomes_a_vod_recording_when_it_ends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let observer: RecordingObserver = {
        let seen = Arc::clone(&seen);
        Arc::new(move |info| seen.lock().push(info))
    };
    *hooks.observer.write() = Some(observer);
    let before = WallClock.unix_secs();
    let mut recorder = Recorder::start(
        tmp.path().to_path_buf(),
        NodeConfig::default(),
        Arc::clone(&hooks),
    )
    .expect("starts");
    for seq in 0..3 {
        recorder.send(Record::Segment {
            init: None,
            init_signed: None,
            signed: None,
            segment: segment(seq),
            master: None,
        });
    }
    recorder.send(Record::Gap {
        stream: StreamName::new("a").expect("valid"),
        rendition: RenditionName::new("src").expect("valid"),
        entry: Entry {
            sequence: 3,
            duration: Duration::from_secs(2),
            discontinuity_sequence: 0,
            discontinuity: false,
            gap: true,
        },
    });
    recorder.send(Record::Segment {
        init: None,
        init_signed: None,
        signed: None,
        segment: segment(4),
        master: None,
    });
    recorder.send(Record::Ended {
        stream: StreamName::new("a").expect("valid"),
        master: "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n".into(),
    });
    recorder.close();
    let dir = tmp.path().join("a").join(SessionId(7).to_string());
    let text = fs::read_to_string(dir.join("src/index.m3u8")).expect("playlist");
    let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
    assert_eq!(p.segments.len(), 5);
    assert!(p.end_list);
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    assert!(text.contains("#EXT-X-GAP"));
    assert_eq!(
        fs::read(dir.join("src/2.ts")).expect("segment"),
        segment(2).bytes
    );
    assert!(!dir.join("src/3.ts").exists());
    assert!(dir.join("master.m3u8").exists());
    let leftovers = fs::read_dir(dir.join("src"))
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
        .count();
    assert_eq!(leftovers, 0);

    let info: RecordingInfo =
        serde_json::from_slice(&fs::read(dir.join(INFO_FILE)).expect("info")).expect("json");
    assert_eq!(info.stream.as_str(), "a");
    assert_eq!(info.id, SessionId(7));
    assert_eq!(info.renditions, [RenditionName::new("src").expect("valid")]);
    assert_eq!(
        info.duration_secs, 10.0,
        "five entries of 2 s, the gap included"
    );
    assert_eq!(info.master_url, "/vod/a/0000000000000007/master.m3u8");
    assert!(before <= info.started_at && info.started_at <= info.ended_at);
    assert_eq!(*seen.lock(), [info], "the observer heard of it once");
    assert_eq!(hooks.generation.load(Ordering::Acquire), 1);
}

#[test]
fn renditions_follow_the_master_then_the_dropped_ones() {
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n";
    let names: Vec<String> = master_renditions(master).map(String::from).collect();
    assert_eq!(names, ["720p", "src"]);
    let rec = Recording {
        stream: StreamName::new("a").expect("valid"),
        id: SessionId(1),
        dir: PathBuf::new(),
        started_at: 0,
        renditions: ["src", "720p", "360p", "240p"]
            .into_iter()
            .map(|r| {
                (
                    RenditionName::new(r).expect("valid"),
                    MediaWindow::unbounded(Duration::from_secs(2)),
                )
            })
            .collect(),
        failed: false,
        journal: None,
        master: None,
        resume_pending: Default::default(),
        list_missed: true,
        spool: None,
        dvr: None,
        cmaf: Default::default(),
    };
    let names: Vec<String> = rec
        .info(master)
        .renditions
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, ["720p", "src", "240p", "360p"]);
}

#[test]
fn recordings_past_retention_are_deleted_when_the_recorder_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stream = StreamName::new("a").expect("valid");
    let write = |id: u64, ended_at: u64| {
        let dir = recording_dir(tmp.path(), &stream, SessionId(id));
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join(MASTER_FILE), "#EXTM3U\n").expect("master");
        let info = RecordingInfo {
            master_url: RecordingInfo::master_url(&stream, SessionId(id)),
            stream: stream.clone(),
            id: SessionId(id),
            started_at: ended_at,
            ended_at,
            duration_secs: 0.0,
            renditions: Vec::new(),
            private: false,
            thumbnail_url: None,
        };
        fs::write(
            dir.join(INFO_FILE),
            serde_json::to_vec(&info).expect("json"),
        )
        .expect("info");
        dir
    };
    let old = write(1, WallClock.unix_secs() - 7_200);
    let recent = write(2, WallClock.unix_secs());
    let hooks = Arc::new(RecorderHooks::default());
    *hooks.retention.write() = Some(Duration::from_secs(3_600));
    let mut recorder = Recorder::start(
        tmp.path().to_path_buf(),
        NodeConfig::default(),
        Arc::clone(&hooks),
    )
    .expect("starts");
    recorder.close();
    assert!(!old.exists());
    assert!(recent.exists());
    assert_eq!(hooks.generation.load(Ordering::Acquire), 1);
}

#[test]
fn a_panicking_observer_does_not_stop_the_recorder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    let observer: RecordingObserver = Arc::new(|_| panic!("observer failed"));
    *hooks.observer.write() = Some(observer);
    let mut recorder = Recorder::start(
        tmp.path().to_path_buf(),
        NodeConfig::default(),
        Arc::clone(&hooks),
    )
    .expect("starts");
    let mut second = segment(0);
    second.meta.stream = StreamName::new("b").expect("valid");
    for record in [
        Record::Segment {
            init: None,
            init_signed: None,
            signed: None,
            segment: segment(0),
            master: None,
        },
        Record::Ended {
            stream: StreamName::new("a").expect("valid"),
            master: String::new(),
        },
        Record::Segment {
            init: None,
            init_signed: None,
            signed: None,
            segment: second,
            master: None,
        },
        Record::Ended {
            stream: StreamName::new("b").expect("valid"),
            master: String::new(),
        },
    ] {
        recorder.send(record);
    }
    recorder.close();
    assert_eq!(recording::list(tmp.path(), 10).len(), 2);
}

const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n";

fn ended() -> Record {
    Record::Ended {
        stream: StreamName::new("a").expect("valid"),
        master: MASTER.into(),
    }
}

fn with_master(seq: u64) -> Record {
    Record::Segment {
        init: None,
        init_signed: None,
        signed: None,
        segment: segment(seq),
        master: Some(Bytes::from_static(MASTER.as_bytes())),
    }
}

fn start(root: &Path, hooks: &Arc<RecorderHooks>, resume_within: Duration) -> Recorder {
    Recorder::start_resuming_within(
        root.to_path_buf(),
        NodeConfig::default(),
        Arc::clone(hooks),
        resume_within,
    )
    .expect("starts")
}

/// A recorder that wrote segments `0..count` of stream `a` and was then killed:
/// nothing finished, the journal and the files stay (its thread is left waiting).
fn killed_after(root: &Path, hooks: &Arc<RecorderHooks>, count: u64) {
    let recorder = start(root, hooks, RESUME_WITHIN);
    for seq in 0..count {
        recorder.send(with_master(seq));
    }
    recorder.flush();
    std::mem::forget(recorder);
}

/// The recording's media playlist: (sequence, gap, discontinuity) per entry.
fn listed(dir: &Path) -> Vec<(u64, bool, bool)> {
    let text = fs::read_to_string(dir.join("src").join(MEDIA_FILE)).expect("playlist");
    let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
    assert!(p.end_list);
    p.segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                p.media_sequence + i as u64,
                s.unknown_tags.iter().any(|t| t.tag == "X-GAP"),
                s.discontinuity,
            )
        })
        .collect()
}

#[test]
fn a_killed_node_carries_its_recording_on_with_the_hole_listed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    killed_after(tmp.path(), &hooks, 4);
    let dir = tmp.path().join("a").join(SessionId(7).to_string());
    assert!(dir.join(JOURNAL_FILE).is_file());
    assert!(!dir.join(INFO_FILE).exists());

    let mut second = start(tmp.path(), &hooks, RESUME_WITHIN);
    // The ingest's window again (3 is already recorded), then what it missed.
    for seq in [3, 6, 7] {
        second.send(with_master(seq));
    }
    second.send(ended());
    second.close();
    assert_eq!(
        listed(&dir),
        [
            (0, false, false),
            (1, false, false),
            (2, false, false),
            (3, false, false),
            // The hole is gaps, with no discontinuity: the session's media carries on in
            // its discontinuity sequence, which a verifying player counts.
            (4, true, false),
            (5, true, false),
            (6, false, false),
            (7, false, false),
        ]
    );
    assert_eq!(
        fs::read(dir.join("src/6.ts")).expect("segment"),
        segment(6).bytes
    );
    assert!(
        !dir.join(JOURNAL_FILE).exists(),
        "ended: nothing left to carry on"
    );
    assert!(!dir.join(LIVE_MASTER_FILE).exists());
    assert_eq!(recording::list(tmp.path(), 10).len(), 1);
}

/// A segment the disk refuses (here: a directory where its file goes, so the rename into
/// place fails as a full disk's write would) is listed as a gap, and the recording goes on.
#[test]
fn a_segment_the_disk_refuses_is_listed_as_a_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    let mut recorder = start(tmp.path(), &hooks, RESUME_WITHIN);
    let dir = tmp.path().join("a").join(SessionId(7).to_string());
    fs::create_dir_all(dir.join("src/1.ts")).expect("a directory in the way");
    for seq in 0..3 {
        recorder.send(with_master(seq));
    }
    recorder.send(ended());
    recorder.close();
    assert_eq!(
        listed(&dir),
        [(0, false, false), (1, true, false), (2, false, false)]
    );
    assert_eq!(
        fs::read(dir.join("src/2.ts")).expect("segment"),
        segment(2).bytes
    );
}

#[test]
fn a_stopped_node_finishes_its_recording_and_carries_it_on_after_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    let mut first = start(tmp.path(), &hooks, RESUME_WITHIN);
    for seq in 0..2 {
        first.send(with_master(seq));
    }
    first.close();
    // Playable and listed, as it stands.
    let dir = tmp.path().join("a").join(SessionId(7).to_string());
    assert_eq!(listed(&dir), [(0, false, false), (1, false, false)]);
    assert_eq!(recording::list(tmp.path(), 10).len(), 1);

    let mut second = start(tmp.path(), &hooks, RESUME_WITHIN);
    second.send(with_master(2));
    second.flush();
    assert!(
        recording::list(tmp.path(), 10).is_empty(),
        "live again: not listed until it ends"
    );
    second.send(ended());
    second.close();
    assert_eq!(
        listed(&dir),
        [(0, false, false), (1, false, false), (2, false, false)]
    );
}

#[test]
fn a_stream_that_does_not_come_back_is_finished_from_its_journal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    killed_after(tmp.path(), &hooks, 3);
    let generation = hooks.generation.load(Ordering::Acquire);

    let second = start(tmp.path(), &hooks, Duration::ZERO);
    second.flush(); // the recorder has looked at its journals
    let dir = tmp.path().join("a").join(SessionId(7).to_string());
    assert_eq!(
        listed(&dir),
        [(0, false, false), (1, false, false), (2, false, false)]
    );
    assert!(!dir.join(JOURNAL_FILE).exists());
    assert_eq!(
        fs::read_to_string(dir.join(MASTER_FILE)).expect("master"),
        MASTER
    );
    assert!(hooks.generation.load(Ordering::Acquire) > generation);
}

/// A stream whose recording is switched off has what was recorded finished at once
/// (playable, listed, observed), nothing written while off; switched on again in the same
/// session, the same recording carries on, without listing what it
/// did not record, and is finished again when the stream ends.
#[test]
fn recording_switched_off_finishes_and_switched_on_carries_on_in_the_same_session() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let observer: RecordingObserver = {
        let seen = Arc::clone(&seen);
        Arc::new(move |info| seen.lock().push(info))
    };
    *hooks.observer.write() = Some(observer);
    let mut recorder = Recorder::start(
        tmp.path().to_path_buf(),
        NodeConfig::default(),
        Arc::clone(&hooks),
    )
    .expect("starts");
    let stream = StreamName::new("a").expect("valid");
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n";
    let send = |recorder: &Recorder, seq: u64| {
        recorder.send(Record::Segment {
            init: None,
            init_signed: None,
            signed: None,
            segment: segment(seq),
            master: Some(Bytes::from_static(master.as_bytes())),
        })
    };
    let switch = |recorder: &Recorder, record: bool| {
        recorder.send(Record::Recording {
            stream: stream.clone(),
            record,
        })
    };
    send(&recorder, 0);
    send(&recorder, 1);
    switch(&recorder, false);
    send(&recorder, 2);
    send(&recorder, 3);
    recorder.flush();
    let dir = tmp.path().join("a").join(SessionId(7).to_string());
    let text = fs::read_to_string(dir.join("src/index.m3u8")).expect("finished at the switch");
    let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
    assert_eq!(p.segments.len(), 2);
    assert!(p.end_list);
    assert!(dir.join(INFO_FILE).exists(), "listed");
    assert_eq!(seen.lock().len(), 1, "observed once");
    for seq in [2, 3] {
        assert!(
            !dir.join(format!("src/{seq}.ts")).exists(),
            "{seq} recorded while off"
        );
    }

    switch(&recorder, true);
    send(&recorder, 4);
    send(&recorder, 5);
    recorder.send(Record::Ended {
        stream: stream.clone(),
        master: master.into(),
    });
    recorder.close();
    let text = fs::read_to_string(dir.join("src/index.m3u8")).expect("playlist");
    let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
    let listed: Vec<(String, bool)> = p
        .segments
        .iter()
        .map(|s| (s.uri.clone(), s.discontinuity))
        .collect();
    assert_eq!(
        listed,
        [
            ("0.ts".to_owned(), false),
            ("1.ts".to_owned(), false),
            // Not recorded while off: not listed, and no discontinuity (the session's
            // media carries on in its discontinuity sequence).
            ("4.ts".to_owned(), false),
            ("5.ts".to_owned(), false),
        ]
    );
    assert!(
        !text.contains("#EXT-X-GAP"),
        "nothing lost, nothing listed as lost"
    );
    assert!(!dir.join(JOURNAL_FILE).exists(), "finished for good");
    assert_eq!(seen.lock().len(), 2);
}

/// Switched on again in another session, a stream gets a new recording named by it; the
/// paused one stays as it was finished.
#[test]
fn recording_switched_on_in_another_session_starts_a_new_recording() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hooks = Arc::new(RecorderHooks::default());
    let mut recorder = Recorder::start(
        tmp.path().to_path_buf(),
        NodeConfig::default(),
        Arc::clone(&hooks),
    )
    .expect("starts");
    let stream = StreamName::new("a").expect("valid");
    let master = Bytes::from_static(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n");
    let send = |recorder: &Recorder, segment: Segment| {
        recorder.send(Record::Segment {
            init: None,
            init_signed: None,
            signed: None,
            segment,
            master: Some(master.clone()),
        })
    };
    send(&recorder, segment(0));
    recorder.send(Record::Recording {
        stream: stream.clone(),
        record: false,
    });
    recorder.send(Record::Recording {
        stream: stream.clone(),
        record: true,
    });
    let mut later = segment(5);
    later.meta.session = SessionId(8);
    send(&recorder, later);
    recorder.close();
    let first = tmp.path().join("a").join(SessionId(7).to_string());
    assert!(first.join(INFO_FILE).exists());
    assert!(!first.join(JOURNAL_FILE).exists(), "let go");
    let second = tmp.path().join("a").join(SessionId(8).to_string());
    assert!(second.join("src/5.ts").exists());
    assert!(!first.join("src/5.ts").exists());
}
