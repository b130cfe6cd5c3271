//! End-to-end tests of `source::run`: real encoders, a real FLV muxer, and the real
//! `ffprobe`/`ffmpeg` CLIs reading the result.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use source::clock::{ClockOverlay, Plane};
use source::stamp::ClockStamp;
use source::{run, SourceConfig, SourceError};
use testkit::ffmpeg::{self, frames};

const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;

fn fixture_config(output: &Path) -> SourceConfig {
    SourceConfig {
        output: output.to_str().expect("utf-8 temp path").to_owned(),
        width: WIDTH,
        height: HEIGHT,
        fps: 30,
        video_bitrate_kbps: 800,
        gop_seconds: 0.5,
        duration: Some(Duration::from_secs(2)),
        realtime: false,
        ..SourceConfig::default()
    }
}

fn temp_flv() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pattern.flv");
    (dir, path)
}

fn ffprobe(path: &Path) -> Value {
    ffmpeg::streams_and_frames(path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Video packets in decode order: (pts, is keyframe).
fn video_packets(path: &Path) -> Vec<(i64, bool)> {
    let probe = ffmpeg::ffprobe(path, &["-select_streams", "v", "-show_packets"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    probe["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| {
            let pts = p["pts"].as_i64().expect("packet pts");
            let key = p["flags"].as_str().is_some_and(|f| f.starts_with('K'));
            (pts, key)
        })
        .collect()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    ffmpeg::stream(probe, kind).unwrap_or_else(|e| panic!("{e:#}"))
}

fn float(v: &Value) -> f64 {
    ffmpeg::number(v).unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The first `count` decoded pictures' luma, via the ffmpeg CLI.
fn decoded_luma(path: &Path, count: usize) -> Vec<Vec<u8>> {
    let size = (WIDTH * HEIGHT) as usize;
    let out = ffmpeg_gray(
        path,
        &["-frames:v", &count.to_string(), "-fps_mode", "passthrough"],
    );
    assert_eq!(out.len(), size * count);
    out.chunks(size).map(<[u8]>::to_vec).collect()
}

/// The first frame of `path`, decoded and scaled (bicubic, ffmpeg's default) to
/// `width` x `height`, as luma.
fn decoded_luma_scaled(path: &Path, width: u32, height: u32) -> Vec<u8> {
    let out = ffmpeg_gray(
        path,
        &["-frames:v", "1", "-vf", &format!("scale={width}:{height}")],
    );
    assert_eq!(out.len(), (width * height) as usize);
    out
}

/// Raw 8-bit luma of `path` decoded by the ffmpeg CLI with `args`.
fn ffmpeg_gray(path: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(args)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ms_of_day(now: SystemTime) -> u64 {
    let ms = now
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    (ms % 86_400_000) as u64
}

fn parse_clock(text: &str) -> u64 {
    let parts: Vec<u64> = text
        .split([':', '.'])
        .map(|p| p.parse().expect("clock digit"))
        .collect();
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + parts[3]
}

#[test]
fn fixture_file_has_exact_gops_both_streams_and_a_readable_clock() {
    let (_dir, path) = temp_flv();
    let config = fixture_config(&path);
    let before = SystemTime::now();
    let stats = run(&config, &AtomicBool::new(false)).expect("publish to file");
    let after = SystemTime::now();

    assert_eq!(stats.video_frames, 60);
    // 94 blocks of 1024 samples are due before 2 s (the 94th starts at 1.98 s).
    assert_eq!(stats.audio_frames, 94);
    assert!(stats.bytes_out > 10_000, "{stats:?}");

    let probe = ffprobe(&path);
    let video = stream(&probe, "video");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["width"], WIDTH);
    assert_eq!(video["height"], HEIGHT);
    assert_eq!(video["pix_fmt"], "yuv420p");
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);

    // Keyframes exactly every gop (0.5 s * 30 fps = 15) frames and nowhere else.
    let pictures = frames(&probe, "video");
    assert_eq!(pictures.len(), 60);
    let keyframes: Vec<usize> = pictures
        .iter()
        .enumerate()
        .filter(|(_, f)| f["key_frame"] == 1)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [0, 15, 30, 45]);
    // B-frames are present, so composition offsets are exercised downstream.
    assert!(
        pictures.iter().any(|f| f["pict_type"] == "B"),
        "no B-frames"
    );
    // Closed GOPs: nothing after a keyframe in decode order is shown before it, so a
    // segment cut at any keyframe decodes on its own.
    let packets = video_packets(&path);
    assert_eq!(packets.iter().filter(|(_, key)| *key).count(), 4);
    for (i, (key_pts, _)) in packets.iter().enumerate().filter(|(_, (_, key))| *key) {
        let leading = packets[i..].iter().filter(|(pts, _)| pts < key_pts).count();
        assert_eq!(leading, 0, "open GOP at keyframe pts {key_pts}");
    }
    assert!(
        packets.windows(2).any(|w| w[1].0 < w[0].0),
        "no reordering: composition offsets are not exercised"
    );

    let first = float(&pictures[0]["pts_time"]);
    let last = float(&pictures[59]["pts_time"]);
    let video_seconds = last - first + 1.0 / 30.0;
    assert!(
        (video_seconds - 2.0).abs() < 0.05,
        "video {video_seconds} s"
    );

    let blocks = frames(&probe, "audio");
    let samples: u64 = blocks
        .iter()
        .map(|f| f["nb_samples"].as_u64().expect("nb_samples"))
        .sum();
    let audio_seconds = samples as f64 / 48_000.0;
    assert!(
        (1.95..=2.1).contains(&audio_seconds),
        "audio {audio_seconds} s"
    );

    // The burnt-in clock survives x264 and reads back as the time of the run, and the
    // frame numbers count up from zero.
    let overlay = ClockOverlay::new(WIDTH, HEIGHT);
    let (start, end) = (ms_of_day(before), ms_of_day(after));
    let mut previous = None;
    for (n, luma) in decoded_luma(&path, 3).iter().enumerate() {
        let plane = Plane::new(luma, WIDTH as usize, WIDTH as usize, HEIGHT as usize)
            .expect("luma geometry");
        let time = overlay
            .read_time(&plane)
            .unwrap_or_else(|| panic!("clock unreadable in frame {n}"));
        let shown = parse_clock(&time);
        // Allow for a run that straddles midnight UTC.
        let in_run = if start <= end {
            (start..=end).contains(&shown)
        } else {
            shown >= start || shown <= end
        };
        assert!(in_run, "frame {n} shows {time}, run was {start}..{end} ms");
        if let Some(p) = previous {
            assert!(shown >= p || start > end, "clock went backwards");
        }
        previous = Some(shown);
        assert_eq!(overlay.read_frame_number(&plane), Some(n as u64));
        // The machine-readable stamp agrees with the readable clock to the millisecond.
        let stamped = ClockStamp::new(WIDTH, HEIGHT)
            .read(&plane)
            .unwrap_or_else(|| panic!("stamp unreadable in frame {n}"));
        assert_eq!(stamped % 86_400_000, shown, "frame {n}");
    }
    // Scaled down as a ladder rung would be, the stamp still reads.
    let scaled = decoded_luma_scaled(&path, 160, 120);
    let plane = Plane::new(&scaled, 160, 160, 120).expect("luma geometry");
    assert!(
        ClockStamp::new(160, 120).read(&plane).is_some(),
        "stamp unreadable at 160x120"
    );
}

#[test]
fn realtime_publish_takes_about_its_duration() {
    let (_dir, path) = temp_flv();
    let config = SourceConfig {
        duration: Some(Duration::from_secs(1)),
        realtime: true,
        ..fixture_config(&path)
    };
    let started = Instant::now();
    let stats = run(&config, &AtomicBool::new(false)).expect("publish to file");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(stats.elapsed >= Duration::from_millis(900), "{stats:?}");
    assert_eq!(stats.video_frames, 30);
}

#[test]
fn stop_flag_ends_an_open_ended_publish_cleanly() {
    let (_dir, path) = temp_flv();
    let config = SourceConfig {
        duration: None,
        realtime: true,
        ..fixture_config(&path)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || run(&config, &stop))
    };
    // Stop mid-stream: once the muxer has flushed its first 32 KiB I/O buffer to the
    // file, encoded packets are flowing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 32 * 1024 {
        assert!(Instant::now() < deadline, "no output after 60 s");
        assert!(!publisher.is_finished(), "publisher ended on its own");
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let stats = publisher
        .join()
        .expect("publisher thread")
        .expect("publish to file");
    assert!(stats.video_frames > 0, "{stats:?}");

    let probe = ffprobe(&path);
    assert_eq!(
        frames(&probe, "video").len() as u64,
        stats.video_frames,
        "every encoded frame reached the file (encoders were flushed)"
    );
}

#[test]
fn invalid_config_is_rejected_before_any_output() {
    let (_dir, path) = temp_flv();
    let config = SourceConfig {
        width: 321,
        ..fixture_config(&path)
    };
    match run(&config, &AtomicBool::new(false)) {
        Err(SourceError::InvalidConfig { field, .. }) => assert_eq!(field, "width"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert!(!path.exists());
}

#[test]
fn refused_rtmp_publish_is_an_open_error_without_the_key() {
    // A TCP peer that accepts and hangs up at once: the RTMP handshake fails.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            drop(conn);
        }
    });
    let config = SourceConfig {
        output: format!("rtmp://127.0.0.1:{port}/live/sk_live_secret"),
        ..fixture_config(Path::new("unused.flv"))
    };
    let err = run(&config, &AtomicBool::new(false)).expect_err("publish must fail");
    server.join().expect("server thread");
    let message = err.to_string();
    assert!(matches!(err, SourceError::Open { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(!message.contains("sk_live_secret"), "{message}");
    assert!(message.contains("/live/<key>"), "{message}");
}

#[test]
fn publishes_over_rtmp_to_a_real_rtmp_server() {
    // FFmpeg's own RTMP server mode stands in for the ingest: it accepts one publish
    // and copies it to a file, and exits when the publisher unpublishes.
    let port = testkit::net::free_port().expect("a free port");
    let dir = tempfile::tempdir().expect("temp dir");
    let received = dir.path().join("received.flv");
    let url = format!("rtmp://127.0.0.1:{port}/live/streamkey");
    let mut server = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "flv", "-listen", "1", "-i", &url])
        .args(["-c", "copy", "-f", "flv"])
        .arg(&received)
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg RTMP server");

    let config = SourceConfig {
        output: url,
        ..fixture_config(Path::new("unused.flv"))
    };
    // The server needs a moment to listen; retry only the errors a retry can fix.
    let mut attempt = 0;
    let stats = loop {
        match run(&config, &AtomicBool::new(false)) {
            Ok(stats) => break stats,
            Err(err) if err.is_retryable() && attempt < 100 => {
                attempt += 1;
                thread::sleep(Duration::from_millis(50));
            }
            Err(err) => {
                let _ = server.kill();
                panic!("publish over RTMP failed: {err}");
            }
        }
    };
    let status = server.wait().expect("ffmpeg RTMP server");
    assert!(status.success(), "RTMP server exited with {status}");
    assert_eq!(stats.video_frames, 60);

    let probe = ffprobe(&received);
    assert_eq!(stream(&probe, "video")["codec_name"], "h264");
    assert_eq!(stream(&probe, "audio")["codec_name"], "aac");
    assert_eq!(frames(&probe, "video").len(), 60);
}
