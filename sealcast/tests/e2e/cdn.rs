//! A cache tier in front of the live cluster (issue 33): Varnish with
//! `deploy/varnish/sealcast.vcl`, fetching from the load balancer's plain-HTTP origin
//! listener, and 200 emulated LL-HLS viewers (`sealcast-viewers --mode ll`, bench/viewers:
//! blocking reloads, preload-hinted parts, delta updates) watching the shared live stream
//! through it. Varnish must collapse their identical requests: the origin gets at most a
//! few requests per part the stream publishes, however many viewers ask, and the viewers
//! play without an error or a stall, within a second of the live edge.
//!
//! And privacy through the cache (issue 45 items 6 and 7), on a cluster of its own that
//! trusts the cache's address (`up --trusted-cache`) and sends it `BAN`s
//! (`up --cache-purge-url`): a token bound to the viewer's network opens a private stream
//! through the cache, one bound to the cache's own address does not (whatever
//! `X-Forwarded-For` the viewer sends); a segment the cache holds of a public stream is
//! refused without a token soon after the stream is made private, through the admin API
//! and through `sealcast streams set --private`, not two minutes later.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use testkit::ffmpeg::TestPattern;
use testkit::process::Spawned;
use tokio::process::Command;

use crate::cluster::{Cluster, BIN};

/// Viewers watching through the cache.
const VIEWERS: usize = 200;
/// How long they watch.
const WATCH_SECS: u64 = 30;
/// Seconds over which they arrive (open loop, Poisson).
const ARRIVE_SECS: u64 = 5;
/// Distinct URLs a low-latency viewer asks for per part of its rendition: the blocking
/// reload that waits for it (as a delta update, or in full after a delta skipped too
/// much: two spellings), and the part itself (asked for on its preload hint and again when
/// listed, one URL). Behind a cache that coalesces, each reaches the origin about once.
const URLS_PER_PART: f64 = 3.0;
/// URLs a viewer asks for once, on joining: the master playlist, the first (plain) media
/// playlist and the init segment (and its signed statement, if a player checks it).
const JOIN_URLS: f64 = 4.0;
/// Players stay within this of the live edge (issue 33).
const EDGE_MS: f64 = 1000.0;

/// The test: Varnish in front of the cluster's origin listener, [`VIEWERS`] LL-HLS viewers
/// of `stream` (its source rung) through it for [`WATCH_SECS`].
pub(crate) async fn check_varnish_in_front(cluster: &Cluster, stream: &str) -> anyhow::Result<()> {
    let viewers_bin = viewers_binary().await?;
    let varnish = Varnish::start(&cluster.origin).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let rendition = "src";
    let media = format!("/live/{stream}/{rendition}/index.m3u8");
    // The stream plays through the cache before anyone watches: a playlist with parts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client.get(format!("{}{media}", varnish.url)).send().await;
        if let Ok(answer) = answer {
            let cache = answer
                .headers()
                .get("x-sealcast-cache")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if answer.status().is_success() {
                let text = answer.text().await.unwrap_or_default();
                if text.contains("#EXT-X-PART:") {
                    anyhow::ensure!(
                        cache.is_some(),
                        "Varnish answered without x-sealcast-cache: not deploy/varnish/sealcast.vcl?"
                    );
                    break;
                }
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{media} through Varnish listed no part within 30 s; Varnish's log:\n{}",
            varnish.process.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let before = varnish.counters().await?;
    let started = Instant::now();
    let report_path = varnish.dir.path().join("viewers.json");
    let mut command = Command::new(&viewers_bin);
    command
        .arg(format!("{}/live/{stream}/master.m3u8", varnish.url))
        .args(["--mode", "ll", "--rendition", rendition])
        .args(["--viewers", &VIEWERS.to_string()])
        .args(["--duration", &WATCH_SECS.to_string()])
        .args(["--ramp", &ARRIVE_SECS.to_string()])
        .args(["--arrival", "poisson", "--timeout", "15"])
        .arg("--json")
        .arg(&report_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(WATCH_SECS + 60), command.output())
        .await
        .context("sealcast-viewers did not finish in time")?
        .context("running sealcast-viewers")?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = varnish.counters().await?;
    anyhow::ensure!(
        out.status.success(),
        "sealcast-viewers exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(&report_path).context("the viewers' report")?;
    // Kept for whoever reads a failure (per viewer: stalls, latency, failed requests).
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    let _ = std::fs::create_dir_all(&artifacts);
    let _ = std::fs::write(artifacts.join("cdn-viewers.json"), &text);
    let report: serde_json::Value = serde_json::from_slice(&text)?;
    // And what Varnish answered other than 2xx, and every fetch from the origin, with
    // the time to first byte: which URLs failed, and whether the origin or the cache said so.
    varnish
        .write_log(
            &artifacts.join("cdn-varnish-errors.log"),
            &["-q", "RespStatus >= 300"],
        )
        .await;
    varnish
        .write_log(&artifacts.join("cdn-varnish-origin.log"), &["-b"])
        .await;

    // Parts the stream published while they watched: the window's length times the rate
    // the origin's own playlist shows (its parts' durations).
    let playlist = String::from_utf8(cluster.get_bytes(&media).await?.to_vec())?;
    let durations = part_durations(&playlist);
    anyhow::ensure!(!durations.is_empty(), "{media} lists no part");
    let parts_per_sec = durations.len() as f64 / durations.iter().sum::<f64>();
    let parts = elapsed * parts_per_sec;
    // Every viewer watches one rendition, the same one.
    let renditions = 1.0;
    let origin = after.backend_req.saturating_sub(before.backend_req) as f64;
    let per_part = origin / (parts * renditions);
    // What a coalescing cache lets through: each URL once per part, the joining URLs once
    // per second of arrivals (the shortest max-age a playlist has), whatever the audience.
    let allowed = URLS_PER_PART * parts * renditions + JOIN_URLS * (ARRIVE_SECS as f64 + 1.0);

    let ll = &report["ll"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let errors = report["errors"]
        .as_u64()
        .context("no errors in the report")?;
    let stalls = ll["stalls"].as_u64().context("no stalls in the report")?;
    let latency_p50 = f(&ll["latency"]["p50_ms"]);
    let latency_p99 = f(&ll["latency"]["p99_ms"]);
    let per_viewer = report["per_viewer"]
        .as_array()
        .context("no per_viewer in the report")?;
    let playing = per_viewer.iter().filter(|v| v["playing"] == true).count();
    let worst_viewer_p50 = per_viewer
        .iter()
        .map(|v| f(&v["latency_p50_ms"]))
        .fold(0.0_f64, f64::max);
    let requests: f64 = ll["requests_per_sec"]
        .as_object()
        .map(|m| m.values().map(f).sum::<f64>() * WATCH_SECS as f64)
        .unwrap_or(0.0);

    let note = |key: &str, value: String| eprintln!("cdn: {key} = {value}");
    note("viewers", format!("{VIEWERS} for {WATCH_SECS} s"));
    note("viewers_playing", playing.to_string());
    note("viewer_requests", format!("{requests:.0}"));
    note("viewer_errors", errors.to_string());
    note("stalls", stalls.to_string());
    note("latency_p50_ms", format!("{latency_p50:.0}"));
    note("latency_p99_ms", format!("{latency_p99:.0}"));
    note(
        "worst_viewer_latency_p50_ms",
        format!("{worst_viewer_p50:.0}"),
    );
    note(
        "part_ttfb_p50_p99_ms",
        format!(
            "{:.0} / {:.0}",
            f(&ll["part_ttfb"]["p50_ms"]),
            f(&ll["part_ttfb"]["p99_ms"])
        ),
    );
    note("parts_per_sec", format!("{parts_per_sec:.2}"));
    note("window_secs", format!("{elapsed:.1}"));
    note("parts_published", format!("{parts:.0}"));
    note("origin_requests", format!("{origin:.0}"));
    note("origin_requests_allowed", format!("{allowed:.0}"));
    note(
        "origin_requests_per_part_per_rendition",
        format!("{per_part:.2}"),
    );
    note(
        "varnish_hits_misses_hitmisses_passes",
        format!(
            "{} / {} / {} / {}",
            after.cache_hit.saturating_sub(before.cache_hit),
            after.cache_miss.saturating_sub(before.cache_miss),
            after.cache_hitmiss.saturating_sub(before.cache_hitmiss),
            after.s_pass.saturating_sub(before.s_pass)
        ),
    );

    anyhow::ensure!(
        playing == VIEWERS,
        "{} of {VIEWERS} viewers never started playing",
        VIEWERS - playing
    );
    // Where to look: tests/artifacts/cdn-viewers.json (per viewer), cdn-varnish-errors.log
    // (answers other than 2xx, hit or miss), cdn-varnish-origin.log (every origin fetch).
    anyhow::ensure!(
        errors == 0,
        "the viewers had {errors} failed requests (tests/artifacts/cdn-varnish-errors.log)"
    );
    anyhow::ensure!(stalls == 0, "the viewers stalled {stalls} times");
    anyhow::ensure!(
        latency_p50 < EDGE_MS,
        "latency behind the live edge p50 {latency_p50:.0} ms, not under {EDGE_MS} ms"
    );
    anyhow::ensure!(
        worst_viewer_p50 < EDGE_MS,
        "a viewer played {worst_viewer_p50:.0} ms behind the live edge (its median), not under {EDGE_MS} ms"
    );
    anyhow::ensure!(
        origin <= allowed,
        "the origin got {origin:.0} requests for {parts:.0} parts ({per_part:.2} per part per \
         rendition), more than the {allowed:.0} a coalescing cache lets through \
         (tests/artifacts/cdn-varnish-origin.log)"
    );
    // Issue 47: the player through the same cache verifies the C2PA data in the media and
    // names who signed it (what a cache in between cannot change).
    let provenance = crate::verify::player_provenance_through(&varnish.url, stream)
        .await
        .context("the player through Varnish")?;
    eprintln!("through Varnish, the player's C2PA tally: {provenance}");
    Ok(())
}

/// The stream of [`check_privacy_through_varnish`].
const PRIVACY_STREAM: &str = "cdn-privacy";
/// The viewer's address: a loopback address of its own, not the cache's (127.0.0.1), so
/// that the load balancer can only know it from the cache's `X-Forwarded-For`.
const VIEWER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How soon a segment the cache held is refused once its stream turned private: after the
/// second `BAN` ([`api::AGAIN_AFTER`], once the nodes know), with room for a loaded
/// machine; far below the two minutes the cache would otherwise keep it.
const PURGED_WITHIN: Duration = Duration::from_secs(25);

/// The test: a cluster of its own (one node) with Varnish in front that it trusts and
/// purges; tokens bound to networks, and privacy changes made through the API and the CLI,
/// seen through the cache.
pub(crate) async fn check_privacy_through_varnish() -> anyhow::Result<()> {
    // The cache's port first: the cluster is told where to send BANs when it starts.
    let listen = testkit::net::free_port()?;
    let cache = format!("http://127.0.0.1:{listen}");
    let cluster = Cluster::start_with(&[
        "--broadcast",
        "1",
        "--trusted-cache",
        "127.0.0.1",
        "--cache-purge-url",
        &cache,
    ])
    .await?;
    let varnish = Varnish::start_on(&cluster.origin, listen).await?;
    let checked = privacy_through(&cluster, &varnish).await;
    drop(varnish);
    let stopped = cluster.stop_and_check_logs().await;
    checked.and(stopped)
}

async fn privacy_through(cluster: &Cluster, varnish: &Varnish) -> anyhow::Result<()> {
    let key = cluster.add_stream(PRIVACY_STREAM).await?;
    let _publisher = TestPattern::new(426, 240, 30, 600).publish(&cluster.rtmp_url(&key))?;
    cluster
        .wait_media(PRIVACY_STREAM, "src", 3, Duration::from_secs(60))
        .await?;
    let viewer = reqwest::Client::builder()
        .local_address(IpAddr::V4(VIEWER))
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = varnish.url.as_str();

    // Made private through the admin API: the API BANs the stream's trees.
    let segment = cached_segment(&viewer, base).await?;
    let answer = cluster
        .client()
        .patch(format!(
            "{}/api/v1/catalog/streams/{PRIVACY_STREAM}",
            cluster.https
        ))
        .header(api::API_KEY_HEADER, &cluster.admin_key)
        .json(&serde_json::json!({ "private": true }))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "PATCH private: {}",
        answer.status()
    );
    refused_within(&viewer, &segment, PURGED_WITHIN)
        .await
        .context("after the admin API made the stream private")?;
    // The node bans again once the privacy reached it: an answer it gave as public in
    // between would otherwise stay cached (seen in CI, where the API's second ban came
    // before the node knew).
    node_banned_again(cluster).await?;

    // Client-bound tokens: the viewer's network opens it through the cache, the cache's
    // own address does not, and a hop the viewer writes itself proves nothing.
    let near = mint(cluster, &format!("{VIEWER}/32")).await?;
    let far = mint(cluster, "127.0.0.1/32").await?;
    let master = format!("{base}/live/{PRIVACY_STREAM}/master.m3u8");
    let (status, _) = get_through(&viewer, &format!("{master}?token={near}"), None).await?;
    anyhow::ensure!(
        status == 200,
        "a token bound to the viewer's {VIEWER}/32 through the trusted cache: {status}"
    );
    let (status, _) = get_through(&viewer, &format!("{master}?token={far}"), None).await?;
    anyhow::ensure!(
        refused(status),
        "a token bound to the cache's 127.0.0.1/32 opened the stream for {VIEWER}: {status}"
    );
    let (status, _) =
        get_through(&viewer, &format!("{master}?token={far}"), Some("127.0.0.1")).await?;
    anyhow::ensure!(
        refused(status),
        "the viewer's own X-Forwarded-For: 127.0.0.1 let a token bound to 127.0.0.1/32 through: {status}"
    );

    // Public again, then private through the CLI, which BANs as the API does.
    streams_set(cluster, "--public", None).await?;
    let segment = cached_segment(&viewer, base).await?;
    streams_set(cluster, "--private", Some(&varnish.url)).await?;
    refused_within(&viewer, &segment, PURGED_WITHIN)
        .await
        .context("after sealcast streams set --private --cache-purge-url")?;
    Ok(())
}

/// Waits (at most 15 s) for the node's log line saying it told the caches again.
async fn node_banned_again(cluster: &Cluster) -> anyhow::Result<()> {
    const SAID: &str =
        "the stream turned private on this node; telling the caches to drop it again";
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = cluster.log().await;
        if log
            .lines()
            .any(|l| l.contains(SAID) && l.contains(PRIVACY_STREAM))
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the node did not ban {PRIVACY_STREAM} again within 15 s of it turning private"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A refusal of a private stream's resource: no token or a bad one (401), a token that
/// does not open it (403), or the 404 a stream that does not exist gets.
fn refused(status: u16) -> bool {
    matches!(status, 401 | 403 | 404)
}

/// `sealcast tokens mint` for [`PRIVACY_STREAM`], bound to `network`.
async fn mint(cluster: &Cluster, network: &str) -> anyhow::Result<String> {
    let out = Command::new(BIN)
        .args([
            "tokens",
            "mint",
            PRIVACY_STREAM,
            "--ttl",
            "1h",
            "--ip",
            network,
        ])
        .arg("--data-dir")
        .arg(cluster.data_dir())
        .stdin(Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "tokens mint --ip {network}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `sealcast streams set` [`PRIVACY_STREAM`] `privacy`, telling `cache` if given.
async fn streams_set(cluster: &Cluster, privacy: &str, cache: Option<&str>) -> anyhow::Result<()> {
    let mut command = Command::new(BIN);
    command
        .args(["streams", "set", PRIVACY_STREAM, privacy, "--data-dir"])
        .arg(cluster.data_dir())
        .env_remove("SEALCAST_CACHE_PURGE_URL")
        .stdin(Stdio::null());
    if let Some(cache) = cache {
        command.args(["--cache-purge-url", cache]);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .context("streams set took over 30 s")??;
    anyhow::ensure!(
        out.status.success(),
        "streams set {privacy}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The status and `x-sealcast-cache` of a GET of `url` by `viewer`, with an
/// `X-Forwarded-For` of its own if given.
async fn get_through(
    viewer: &reqwest::Client,
    url: &str,
    forwarded: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut request = viewer.get(url);
    if let Some(hop) = forwarded {
        request = request.header("x-forwarded-for", hop);
    }
    let answer = request.send().await.context("a GET through Varnish")?;
    let cache = answer
        .headers()
        .get("x-sealcast-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let status = answer.status().as_u16();
    let _ = answer.bytes().await;
    Ok((status, cache))
}

/// The URL through the cache of [`PRIVACY_STREAM`]'s newest segment, once it is served
/// without a token and the cache answers it from its store (`hit`).
async fn cached_segment(viewer: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let media = format!("{base}/live/{PRIVACY_STREAM}/src/index.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = viewer.get(&media).send().await?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        let newest = text
            .lines()
            .rev()
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let last = if let (true, Some(segment)) = (status.is_success(), newest) {
            let url = format!("{base}/live/{PRIVACY_STREAM}/src/{segment}");
            let _ = get_through(viewer, &url, None).await?;
            let (status, cache) = get_through(viewer, &url, None).await?;
            if status == 200 && cache == "hit" {
                return Ok(url);
            }
            format!("{url}: {status} {cache}")
        } else {
            format!("{media}: {status}")
        };
        anyhow::ensure!(
            Instant::now() < deadline,
            "no segment of a public {PRIVACY_STREAM} was a hit in the cache within 30 s (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `url` without a token until it is refused, for at most `within`.
async fn refused_within(
    viewer: &reqwest::Client,
    url: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let (status, cache) = get_through(viewer, url, None).await?;
        if refused(status) {
            eprintln!(
                "cdn: {url} refused without a token after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "{url} was still served without a token {within:?} after its stream turned \
             private (last: {status}, cache {cache:?}): the cache was not purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `DURATION`s of a media playlist's `#EXT-X-PART`s.
fn part_durations(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|attrs| {
            attrs
                .split(',')
                .find_map(|a| a.strip_prefix("DURATION="))
                .and_then(|d| d.parse().ok())
        })
        .collect()
}

/// Varnish's counters this test reads (`varnishstat -j`).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    /// Requests sent to the origin.
    backend_req: u64,
    cache_hit: u64,
    cache_miss: u64,
    cache_hitmiss: u64,
    s_pass: u64,
}

/// `varnishd` in the foreground on a free port, with the repository's VCL and an
/// `origin.vcl` of its own naming the cluster's origin listener; killed when dropped (its
/// cache process exits with it).
struct Varnish {
    /// Dropped first: the process, then its directory.
    process: Spawned,
    /// Its base URL (no trailing slash).
    url: String,
    /// `origin.vcl`, the working directory (`-n`) and the log.
    dir: tempfile::TempDir,
}

impl Varnish {
    /// Starts it on a free port in front of `origin`.
    async fn start(origin: &str) -> anyhow::Result<Self> {
        Self::start_on(origin, testkit::net::free_port()?).await
    }

    /// Starts it on 127.0.0.1:`listen` in front of `origin` (`http://HOST:PORT`) and
    /// waits until `/healthz` answers through it (passed to the load balancer, which
    /// answers it itself).
    async fn start_on(origin: &str, listen: u16) -> anyhow::Result<Self> {
        let (host, port) = origin
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').rsplit_once(':'))
            .with_context(|| format!("the origin listener {origin:?} is not http://HOST:PORT"))?;
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("origin.vcl"),
            format!(
                "# The e2e cluster's load balancer (its origin listener).\n\
                 backend lb {{\n\
                 \x20   .host = \"{host}\";\n\
                 \x20   .port = \"{port}\";\n\
                 \x20   .connect_timeout = 1s;\n\
                 \x20   .first_byte_timeout = 15s;\n\
                 \x20   .between_bytes_timeout = 10s;\n\
                 }}\n\
                 sub vcl_init {{\n\
                 \x20   new origin = directors.round_robin();\n\
                 \x20   origin.add_backend(lb);\n\
                 }}\n\
                 # Who may BAN: the test's own cluster, on this machine.\n\
                 acl purgers {{\n\
                 \x20   \"127.0.0.1\";\n\
                 }}\n"
            ),
        )?;
        let deploy = repo_root().join("deploy/varnish");
        let mut command = Command::new(varnishd());
        command
            // Foreground; no jail (the test's own process, its own directories).
            .args(["-F", "-j", "none", "-n"])
            .arg(dir.path().join("work"))
            .args(["-a", &format!("127.0.0.1:{listen}"), "-f"])
            .arg(deploy.join("sealcast.vcl"))
            .arg("-p")
            .arg(format!(
                "vcl_path={}:{}",
                dir.path().display(),
                deploy.display()
            ))
            .args(["-s", "malloc,64m"]);
        let process = Spawned::start("varnishd", command, &dir.path().join("varnishd.log"))?;
        let mut varnish = Varnish {
            process,
            url: format!("http://127.0.0.1:{listen}"),
            dir,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = client.get(format!("{}/healthz", varnish.url)).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                break;
            }
            if let Some(status) = varnish.process.try_wait()? {
                anyhow::bail!(
                    "varnishd exited with {status}; its output:\n{}",
                    varnish.process.log()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "/healthz did not answer through Varnish within 60 s; its output:\n{}",
                varnish.process.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        varnish.process.drain();
        Ok(varnish)
    }

    /// Its shared-memory log so far (`varnishncsa -d`, with `args`) into `path`: status,
    /// URL, hit or miss, time to first byte. Best effort (a test's artifact).
    async fn write_log(&self, path: &Path, args: &[&str]) {
        let out = Command::new("varnishncsa")
            .arg("-n")
            .arg(self.dir.path().join("work"))
            .arg("-d")
            .args(args)
            .args([
                "-F",
                "%t %s %U%q %{Varnish:hitmiss}x %{Varnish:time_firstbyte}x",
            ])
            .stdin(Stdio::null())
            .output()
            .await;
        if let Ok(out) = out {
            let _ = std::fs::write(path, out.stdout);
        }
    }

    /// Its counters now.
    async fn counters(&self) -> anyhow::Result<Counters> {
        let out = Command::new("varnishstat")
            .arg("-n")
            .arg(self.dir.path().join("work"))
            .arg("-j")
            .args(["-f", "MAIN.backend_req", "-f", "MAIN.cache_hit"])
            .args(["-f", "MAIN.cache_miss", "-f", "MAIN.cache_hitmiss"])
            .args(["-f", "MAIN.s_pass"])
            .stdin(Stdio::null())
            .output()
            .await
            .context("running varnishstat")?;
        anyhow::ensure!(
            out.status.success(),
            "varnishstat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        // Varnish 6.5 and later nest the counters under "counters"; older ones do not.
        let counters = json.get("counters").unwrap_or(&json);
        let read = |name: &str| {
            counters[name]["value"]
                .as_u64()
                .with_context(|| format!("varnishstat gave no {name}"))
        };
        Ok(Counters {
            backend_req: read("MAIN.backend_req")?,
            cache_hit: read("MAIN.cache_hit")?,
            cache_miss: read("MAIN.cache_miss")?,
            cache_hitmiss: read("MAIN.cache_hitmiss")?,
            s_pass: read("MAIN.s_pass")?,
        })
    }
}

/// The repository (this crate's parent). Not `testkit::repo_root`: testkit is a
/// dependency built once for every checkout sharing a target directory, and keeps the
/// path of the checkout that built it.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// Debian's `varnishd` (in /usr/sbin, which a test's PATH may lack).
fn varnishd() -> PathBuf {
    let sbin = Path::new("/usr/sbin/varnishd");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("varnishd")
    }
}

/// The viewer emulator, `sealcast-viewers` of the `viewers` package (bench/viewers).
///
/// `SEALCAST_VIEWERS_BIN` names a prebuilt one. Otherwise it is the one the workspace's
/// test build made (`cargo test --workspace --no-run` builds a package's binaries for its
/// integration tests), next to the `sealcast` binary under test, when it is newer than
/// every source of its package and the lock file: `env!("CARGO_BIN_EXE_…")` only reaches
/// binaries of this package, and a dev-dependency on a benchmark tool would build it (and
/// its dependencies) into every test of this crate. Only a binary missing or older than
/// its sources is built here, with the workspace's own selection (`test --workspace
/// --no-run`, the `viewers` package's test target), the same cargo, target directory and
/// profile, so that a stale binary (an older command line) is never used. Cargo is not
/// asked otherwise: run from inside a test it compiled the package's binaries again (about
/// 80 s), and `build -p viewers`, which resolves the package's features alone, most of the
/// tree (about 330 s of this trial on two cores; docs/deployment.md, CI times).
async fn viewers_binary() -> anyhow::Result<PathBuf> {
    if let Some(given) = std::env::var_os("SEALCAST_VIEWERS_BIN") {
        return Ok(PathBuf::from(given));
    }
    let bin = Path::new(BIN);
    let profile_dir = bin.parent().context("the sealcast binary's directory")?;
    let viewers = profile_dir.join("sealcast-viewers");
    if built_after_its_sources(&viewers) {
        return Ok(viewers);
    }
    let target_dir = profile_dir
        .parent()
        .context("the sealcast binary's target directory")?;
    let cargo = Path::new(env!("CARGO"));
    let mut command = Command::new(cargo);
    // The rustc of that cargo's toolchain: run without rustup's proxy, cargo would call
    // the proxy's `rustc`, which obeys the `rust-toolchain.toml` some crates ship (sqlx
    // pins one) when it compiles them.
    let rustc = cargo.with_file_name("rustc");
    if rustc.exists() {
        command.env("RUSTC", rustc);
    }
    command
        .current_dir(repo_root())
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--quiet",
            "--test",
            "viewers",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
    }
    let out = tokio::time::timeout(
        Duration::from_secs(1200),
        command.stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .context("building sealcast-viewers took over 20 minutes")?
    .context("running cargo test --workspace --no-run --test viewers")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo test --workspace --no-run --test viewers failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        viewers.exists(),
        "no sealcast-viewers at {} after building it",
        viewers.display()
    );
    Ok(viewers)
}

/// Whether `binary` exists and was written after every file of the `viewers` package
/// (bench/viewers) and the workspace's lock file last changed.
fn built_after_its_sources(binary: &Path) -> bool {
    fn newest(path: &Path) -> Option<std::time::SystemTime> {
        let meta = std::fs::metadata(path).ok()?;
        let mut latest = meta.modified().ok()?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).ok()? {
                latest = latest.max(newest(&entry.ok()?.path())?);
            }
        }
        Some(latest)
    }
    let Some(built) = std::fs::metadata(binary).and_then(|m| m.modified()).ok() else {
        return false;
    };
    let root = repo_root();
    [root.join("bench/viewers"), root.join("Cargo.lock")]
        .iter()
        .all(|source| newest(source).is_some_and(|changed| changed <= built))
}
