//! The emulator against a real HTTP server on a free port: a live stream whose window
//! slides every half second (target duration 1 s), answered at once or slowly; a ramp that
//! stops at the step where segments turn slow; and time to first byte told apart from the
//! end of a slow body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::MASTER;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use viewers::arrival::Arrival;
use viewers::plan::{Kind, Pick};
use viewers::ramp::Verdict;
use viewers::{ramp, run, Config, Mode, RampConfig};

struct Live {
    started: Instant,
    /// How long each media playlist answer is held.
    playlist_delay: Duration,
    /// Segments asked for this long after the start are answered `slow_by` late.
    slow_after: Duration,
    slow_by: Duration,
    playlists: AtomicU64,
}

async fn playlist(State(live): State<Arc<Live>>) -> String {
    live.playlists.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(live.playlist_delay).await;
    let newest = (live.started.elapsed().as_millis() / 500) as u64 + 3;
    let first = newest - 2;
    let mut text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
    for s in first..=newest {
        text.push_str(&format!("#EXTINF:0.5,\n{s}.ts\n"));
    }
    text
}

async fn segment(State(live): State<Arc<Live>>, Path(_): Path<String>) -> Vec<u8> {
    if live.started.elapsed() >= live.slow_after {
        tokio::time::sleep(live.slow_by).await;
    }
    vec![0x47u8; 1880]
}

async fn serve(playlist_delay: Duration) -> (String, Arc<Live>) {
    serve_live(playlist_delay, Duration::MAX, Duration::ZERO).await
}

async fn serve_live(
    playlist_delay: Duration,
    slow_after: Duration,
    slow_by: Duration,
) -> (String, Arc<Live>) {
    let live = Arc::new(Live {
        started: Instant::now(),
        playlist_delay,
        slow_after,
        slow_by,
        playlists: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/live/a/360p/index.m3u8", get(playlist))
        .route("/live/a/360p/{segment}", get(segment))
        .with_state(Arc::clone(&live));
    (crate::support::serve(app).await, live)
}

fn config(master: &str) -> Config {
    Config {
        master: master.parse().expect("url"),
        viewers: 4,
        duration: Duration::from_secs(4),
        ramp: Duration::from_millis(500),
        pick: Pick::Named("360p".into()),
        mode: Mode::Hls,
        arrival: Arrival::Paced,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_follow_a_live_stream() {
    let (master, live) = serve(Duration::ZERO).await;
    let stats = run(&config(&master), reqwest::Client::new).await.stats;
    let s = stats.summaries();
    assert_eq!(stats.errors(), 0, "{s:?}");
    assert_eq!(s[&Kind::Master].ok, 4);
    // One reload per target duration (1 s) over about 4 s, per viewer.
    let playlists = s[&Kind::Playlist].ok;
    assert!((12..=20).contains(&playlists), "{playlists} playlist loads");
    assert_eq!(live.playlists.load(Ordering::Relaxed), playlists);
    // Two new segments per reload (the window slides every 0.5 s), after the live edge.
    let segments = s[&Kind::Segment].ok;
    assert!(
        segments >= 2 * playlists - 8,
        "{segments} segments for {playlists} reloads"
    );
    assert_eq!(s[&Kind::Segment].bytes, segments * 1880);
    assert!(s[&Kind::Segment].p99_ms < 1000.0, "{s:?}");
    // Headers come before the end of the body.
    for summary in s.values() {
        assert!(summary.ttfb_p99_ms <= summary.max_ms, "{s:?}");
        assert!(summary.ttfb_p50_ms <= summary.p50_ms, "{s:?}");
    }
}

/// Open loop: playlists answered 1.5 s late (longer than the target duration) are still
/// requested once per target duration, and the lateness shows as latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_shows_as_latency_not_as_fewer_requests() {
    let (master, live) = serve(Duration::from_millis(1500)).await;
    let stats = run(&config(&master), reqwest::Client::new).await.stats;
    let s = stats.summaries();
    assert_eq!(stats.errors(), 0, "{s:?}");
    // Each viewer: its first load at its start (0 to 0.375 s), the first reload when that
    // answers (1.5 s later), then one per second: 4 each within the 4 s, 16 in all. A
    // viewer that waited for each answer would make 3 (12 in all).
    let requested = live.playlists.load(Ordering::Relaxed);
    assert!(
        requested >= 14,
        "only {requested} playlist requests in 4 s at 1 s targets"
    );
    assert!(s[&Kind::Playlist].p50_ms >= 1500.0, "{s:?}");
    // The whole answer is held, so the headers are as late as the body.
    assert!(s[&Kind::Playlist].ttfb_p50_ms >= 1500.0, "{s:?}");
}

/// A ramp of 1 s steps (2, 4, 6, 8 viewers) against a server whose segments turn 400 ms
/// slow 1.6 s in: the first two steps pass, the third (2 to 3 s) fails on segment TTFB,
/// and the ramp stops there with 4 viewers as the count. (Viewers join in the first 0.2 s
/// of a step and reload every second, so requests are due in the first ~0.3 s of each
/// step: none near 1.6 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_stops_at_the_step_where_segments_turn_slow() {
    let (master, _live) = serve_live(
        Duration::ZERO,
        Duration::from_millis(1600),
        Duration::from_millis(400),
    )
    .await;
    let config = RampConfig {
        pick: Pick::Named("360p".into()),
        join: Duration::from_millis(200),
        settle: Duration::from_millis(300),
        watch: vec![std::process::id()],
        ..RampConfig::new(
            master.parse().expect("url"),
            viewers::ramp::counts(2, 2, 1.0, 8),
            Duration::from_secs(1),
        )
    };

    let mut seen = Vec::new();
    let report = ramp(&config, Arc::new(reqwest::Client::new), |step| {
        seen.push(step.step)
    })
    .await;
    assert_eq!(
        report.verdicts(),
        [
            (2, Verdict::Passed),
            (4, Verdict::Passed),
            (6, Verdict::SlowSegments)
        ],
        "{report:#?}"
    );
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!((report.capacity, report.ended_on_failure), (4, true));
    let first = &report.steps[0];
    assert_eq!(first.added, 2);
    assert_eq!(first.kinds[&Kind::Master].ok, 2, "{first:#?}");
    assert!(first.kinds[&Kind::Segment].ok >= 2, "{first:#?}");
    assert!(
        first.kinds[&Kind::Segment].ttfb_p99_ms < 250.0,
        "{first:#?}"
    );
    assert!(report.steps[2].kinds[&Kind::Segment].ttfb_p99_ms >= 250.0);
    // The CPU readings are there (this test's own process is watched).
    assert!(
        first.cpu.own.is_some() && first.cpu.watched.is_some(),
        "{first:#?}"
    );
}

/// Time to first byte is when the headers come, not the body: a segment whose headers are
/// sent at once and whose body follows 600 ms later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttfb_is_the_headers_not_the_body() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(slow_body_connection(socket));
        }
    });
    let master = format!("http://{addr}/live/a/master.m3u8");
    let config = Config {
        viewers: 2,
        duration: Duration::from_secs(3),
        ..config(&master)
    };
    let stats = run(&config, reqwest::Client::new).await.stats;
    let s = stats.summaries();
    assert_eq!(stats.errors(), 0, "{s:?}");
    let seg = &s[&Kind::Segment];
    assert!(seg.ok >= 2, "{s:?}");
    assert!(seg.ttfb_max_ms < 300.0, "{s:?}");
    assert!(seg.p50_ms >= 600.0, "{s:?}");
}

/// A hand-written HTTP/1.1 server connection: playlists at once; segments' headers at
/// once and their body 600 ms later.
async fn slow_body_connection(mut socket: tokio::net::TcpStream) {
    let started = Instant::now();
    let mut buffer = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            buffer.drain(..end + 4);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (body, slow) = if path.ends_with("master.m3u8") {
                (MASTER.as_bytes().to_vec(), false)
            } else if path.ends_with("index.m3u8") {
                let newest = (started.elapsed().as_millis() / 500) as u64 + 3;
                let mut text = format!(
                    "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{}\n",
                    newest - 2
                );
                for s in newest - 2..=newest {
                    text.push_str(&format!("#EXTINF:0.5,\n{s}.ts\n"));
                }
                (text.into_bytes(), false)
            } else {
                (vec![0x47u8; 1880], true)
            };
            let headers = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            if socket.write_all(headers.as_bytes()).await.is_err() {
                return;
            }
            if slow {
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
            if socket.write_all(&body).await.is_err() {
                return;
            }
        }
    }
}
