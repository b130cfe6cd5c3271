//! The stream cap (`IngestSettings::max_streams`) as real publishers meet it: an ingest
//! with room for one stream, that stream live over RTMP, then the `ffmpeg` CLI publishing a
//! second stream over RTMP and over SRT. Each is refused before anything starts, with an
//! answer ffmpeg prints (RTMP's status description, SRT's rejection), and counted as
//! `full`; the stream already live goes on.

use std::sync::Arc;
use std::time::Duration;

use ingest::{IngestMetrics, Registry};
use intake::srt::SrtSettings;
use testkit::ffmpeg::TestPattern;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_past_the_stream_cap_is_told_so_over_rtmp_and_srt() {
    let catalog = Arc::new(crate::support::Authority::default());
    catalog.add("sk_cap_first", "first", 0);
    catalog.add("sk_cap_second", "second", 0);
    let metrics = IngestMetrics::default();
    let (events, _keep) = tokio::sync::mpsc::channel(1024);
    let registry = Registry::new(
        crate::support::settings(Duration::from_secs(1), 8, Some(1)),
        catalog,
        events,
        metrics.clone(),
    );
    let stop = CancellationToken::new();
    let rtmp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let rtmp_addr = rtmp.local_addr().expect("addr");
    let rtmp_server = tokio::spawn(ingest::rtmp::serve(
        rtmp,
        Arc::clone(&registry),
        stop.clone(),
    ));
    let srt = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let srt_addr = srt.local_addr().expect("addr");
    let srt_server = tokio::spawn(ingest::srt::serve(
        srt,
        Arc::clone(&registry),
        SrtSettings::default(),
        stop.clone(),
    ));

    let first = testkit::rtmp::RtmpPublisher::publish(rtmp_addr, "live", "sk_cap_first")
        .await
        .expect("the first stream publishes");
    assert_eq!(registry.live_sessions().len(), 1);

    let pattern = TestPattern::new(320, 240, 25, 5);
    let (status, stderr) = pattern
        .publish(&format!("rtmp://{rtmp_addr}/live/sk_cap_second"))
        .expect("starts ffmpeg")
        .wait_with_stderr()
        .await
        .expect("ffmpeg ends");
    assert!(!status.success(), "ffmpeg published past the cap");
    assert!(
        stderr.contains("maximum of streams"),
        "ffmpeg did not print the RTMP refusal: {stderr}"
    );
    // (ffmpeg prints the URL it was given, key and all; the server's answer has none.)
    let answer = stderr
        .lines()
        .find(|l| l.contains("Server error"))
        .unwrap_or_default();
    assert!(
        !answer.contains("sk_cap"),
        "the refusal echoed a key: {answer}"
    );

    let (status, stderr) = pattern
        .clone()
        .format("mpegts")
        .publish(&format!(
            "srt://{srt_addr}?streamid=#!::r=live/sk_cap_second,m=publish"
        ))
        .expect("starts ffmpeg")
        .wait_with_stderr()
        .await
        .expect("ffmpeg ends");
    assert!(!status.success(), "ffmpeg published past the cap over SRT");
    assert!(
        stderr.to_ascii_lowercase().contains("reject"),
        "ffmpeg did not print the SRT rejection: {stderr}"
    );

    assert_eq!(crate::support::publishes(&metrics, "full"), 2.0);
    let live = registry.live_sessions();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].stream.as_str(), "first");

    first.close().await;
    stop.cancel();
    for server in [rtmp_server, srt_server] {
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("the server stops")
            .expect("joins")
            .expect("ends cleanly");
    }
}
