//! What the emulator's integration tests share: a live stream's master playlist, and an
//! HTTP server for a stream's routes on a free port.

use axum::routing::get;
use axum::Router;

/// One variant, `360p`.
pub(crate) const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n";

/// Serves `routes` (those of `/live/a/360p/`) and the master playlist
/// `/live/a/master.m3u8` on a free port of 127.0.0.1 until the test ends; the master's URL.
pub(crate) async fn serve(routes: Router) -> String {
    let app = routes.route("/live/a/master.m3u8", get(|| async { MASTER }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/live/a/master.m3u8")
}
