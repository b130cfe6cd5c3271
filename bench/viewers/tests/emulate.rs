//! The emulator against a real HTTP server on a free port: a live stream whose window
//! slides every half second (target duration 1 s), answered at once or slowly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use tokio::time::Instant;
use viewers::plan::{Kind, Pick};
use viewers::{run, Config};

struct Live {
    started: Instant,
    /// How long each media playlist answer is held.
    playlist_delay: Duration,
    playlists: AtomicU64,
}

const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n";

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

async fn serve(playlist_delay: Duration) -> (String, Arc<Live>) {
    let live = Arc::new(Live {
        started: Instant::now(),
        playlist_delay,
        playlists: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/live/a/master.m3u8", get(|| async { MASTER }))
        .route("/live/a/360p/index.m3u8", get(playlist))
        .route(
            "/live/a/360p/{segment}",
            get(|Path(_): Path<String>| async { vec![0x47u8; 1880] }),
        )
        .with_state(Arc::clone(&live));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/live/a/master.m3u8"), live)
}

fn config(master: &str) -> Config {
    Config {
        master: master.parse().expect("url"),
        viewers: 4,
        duration: Duration::from_secs(4),
        ramp: Duration::from_millis(500),
        pick: Pick::Named("360p".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_follow_a_live_stream() {
    let (master, live) = serve(Duration::ZERO).await;
    let stats = run(&config(&master), reqwest::Client::new).await;
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
}

/// Open loop: playlists answered 1.5 s late (longer than the target duration) are still
/// requested once per target duration, and the lateness shows as latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_shows_as_latency_not_as_fewer_requests() {
    let (master, live) = serve(Duration::from_millis(1500)).await;
    let stats = run(&config(&master), reqwest::Client::new).await;
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
}
