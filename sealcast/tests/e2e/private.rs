//! Private streams (issue 34), end to end: a private stream's every resource refused
//! without its token, through the load balancer and on a node; played with its token by
//! ffmpeg and by hls.js in Chromium, every URL they fetched carrying it; public streams
//! unchanged and cacheable; the on_publish hook refusing and timing out publishes; a
//! client over its request budget answered 429 while another client waits no longer.

use domain::time::WallClock;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use testkit::browser::Browser;
use testkit::ffmpeg::TestPattern;
use tokio::process::Command;

use crate::cluster::{Cluster, BIN};

/// The private stream of these tests.
const PRIVATE: &str = "private-town-hall";

/// `sealcast tokens mint …` against the cluster's key directory; the token alone.
pub(crate) async fn mint(
    cluster: &Cluster,
    stream: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let out = Command::new(BIN)
        .args(["tokens", "mint", stream, "--ttl", "2h", "--data-dir"])
        .arg(cluster.data_dir())
        .args(extra)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "tokens mint failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    anyhow::ensure!(token.split('.').count() == 3, "not a JWT: {token:?}");
    Ok(token)
}

/// A token that expired an hour ago, minted with the cluster's playback key itself.
fn expired(cluster: &Cluster, stream: &str) -> anyhow::Result<String> {
    let keys = certs::KeyDir::new(cluster.data_dir().join("keys"));
    let key = keys.playback_key()?;
    let now = WallClock.unix_secs();
    let claims =
        certs::tokens::Claims::new(domain::StreamName::new(stream)?, now - 7200, now - 3600);
    Ok(key.mint(&claims))
}

/// `token` with one character in its payload changed.
fn altered(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = token.find('.').unwrap_or(0) + 5;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap_or_default()
}

async fn status(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<(u16, reqwest::header::HeaderMap, bytes::Bytes)> {
    let r = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Ok((status, headers, r.bytes().await?))
}

/// With `query` (`?token=…` or nothing), the first URI of each kind of a private stream's
/// playlists: master, media, init, segment, part, the preload hint.
async fn resources(cluster: &Cluster, base: &str, token: &str) -> anyhow::Result<Vec<String>> {
    let client = cluster.client();
    let master = format!("{base}/live/{PRIVATE}/master.m3u8");
    let (s, _, body) = status(client, &format!("{master}?token={token}")).await?;
    anyhow::ensure!(s == 200, "master with a valid token: {s}");
    let text = String::from_utf8(body.to_vec())?;
    let variant = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .context("no variant")?;
    let rendition = variant.split('/').next().context("variant")?;
    let media = format!("{base}/live/{PRIVATE}/{rendition}/index.m3u8");
    let (s, _, body) = status(client, &format!("{media}?token={token}")).await?;
    anyhow::ensure!(s == 200, "media with a valid token: {s}");
    let text = String::from_utf8(body.to_vec())?;
    let strip = |uri: &str| uri.split('?').next().unwrap_or(uri).to_owned();
    let segment = text
        .lines()
        .rev()
        .find(|l| l.ends_with(&format!("token={token}")) && !l.starts_with('#'))
        .map(strip)
        .context("no segment carrying the token")?;
    let part = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .and_then(|a| a.split("URI=\"").nth(1))
        .and_then(|a| a.split('"').next())
        .map(strip)
        .context("no part")?;
    let dir = format!("{base}/live/{PRIVATE}/{rendition}");
    Ok(vec![
        master,
        media,
        format!("{dir}/init.mp4"),
        format!("{dir}/{segment}"),
        format!("{dir}/{part}"),
        format!("{dir}/{segment}.sig"),
    ])
}

/// Every URI a playlist lists, tags' `URI="…"` included.
fn uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            for attr in line.split("URI=\"").skip(1) {
                out.push(attr.split('"').next().unwrap_or_default().to_owned());
            }
        } else if !line.is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

pub(crate) async fn check_private_stream(cluster: &Cluster, public: &str) -> anyhow::Result<()> {
    // A private stream, made with the CLI, publishing a light 240p source rung.
    let key = cluster.add_stream_with(PRIVATE, &["--private"]).await?;
    let listed = Command::new(BIN)
        .args(["streams", "list", "--json", "--data-dir"])
        .arg(cluster.data_dir())
        .output()
        .await?;
    let listed: Value = serde_json::from_slice(&listed.stdout)?;
    anyhow::ensure!(
        listed
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == PRIVATE && s["private"] == true),
        "streams list --json does not show it private: {listed}"
    );
    let publisher = TestPattern::new(426, 240, 30, 600).publish(&cluster.rtmp_url(&key))?;
    let token = mint(cluster, PRIVATE, &[]).await?;
    let client = cluster.client();
    // Up once the master answers with the token.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!(
            "{}/live/{PRIVATE}/src/index.m3u8?token={token}",
            cluster.http
        );
        let (s, _, body) = status(client, &url).await?;
        if s == 200
            && String::from_utf8_lossy(&body)
                .matches(".m4s?token=")
                .count()
                >= 3
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the private stream never came up ({s})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Not in the stream list, on a node or through the load balancer.
    for base in [&cluster.http, &cluster.https] {
        let (_, _, list) = status(client, &format!("{base}/api/v1/streams")).await?;
        anyhow::ensure!(
            !String::from_utf8_lossy(&list).contains(PRIVATE),
            "{base} lists it"
        );
    }

    // Every resource type refused with every kind of bad token, on a node and through
    // the load balancer. A request that shows no knowledge of the stream is answered as
    // for a stream that does not exist (404): on a node, no token, one that is not valid
    // or another stream's; through the load balancer, which checks every token it sees
    // whether the stream exists or not (401, 403), no token. Only a token of the stream
    // itself learns it is there (403 from another network).
    let other = mint(cluster, public, &[]).await?;
    let bound = mint(cluster, PRIVATE, &["--ip", "198.51.100.0/24"]).await?;
    // (what, token, on a node, through the load balancer)
    let bad: [(&str, Option<String>, u16, u16); 5] = [
        ("no token", None, 404, 404),
        (
            "an expired token",
            Some(expired(cluster, PRIVATE)?),
            404,
            401,
        ),
        ("another stream's token", Some(other), 404, 403),
        ("a token altered by a byte", Some(altered(&token)), 404, 401),
        ("a token bound to another network", Some(bound), 403, 403),
    ];
    for base in [cluster.http.clone(), cluster.https.clone()] {
        let on_node = base == cluster.http;
        for url in resources(cluster, &base, &token).await? {
            for (what, bad_token, node_answer, lb_answer) in &bad {
                let want = if on_node { *node_answer } else { *lb_answer };
                let url = match bad_token {
                    Some(t) => format!("{url}?token={t}"),
                    None => url.clone(),
                };
                let (s, headers, body) = status(client, &url).await?;
                anyhow::ensure!(s == want, "{url} with {what}: {s}, not {want}");
                if s == 404 {
                    // The same request for a stream that never existed: the same answer.
                    let ghost = url.replace(&format!("/{PRIVATE}/"), "/never-existed/");
                    let (gs, _, ghost_body) = status(client, &ghost).await?;
                    anyhow::ensure!(
                        (gs, &ghost_body) == (s, &body),
                        "{url} with {what} answers {s} {body:?}, a stream that does not exist {gs} {ghost_body:?}"
                    );
                }
                anyhow::ensure!(
                    headers.get("cache-control").is_some_and(|v| v
                        .to_str()
                        .is_ok_and(|v| v.contains("no-store") || v.contains("no-cache"))),
                    "a refusal may be cached: {headers:?}"
                );
            }
        }
    }

    // With the token: playlists carry it on every URI; answers are private.
    let master = format!("{}/live/{PRIVATE}/master.m3u8?token={token}", cluster.https);
    let (s, headers, body) = status(client, &master).await?;
    anyhow::ensure!(s == 200, "{master}: {s}");
    anyhow::ensure!(
        headers["cache-control"].to_str()?.starts_with("private"),
        "a private master is cacheable by others: {headers:?}"
    );
    let media = format!(
        "{}/live/{PRIVATE}/src/index.m3u8?token={token}",
        cluster.https
    );
    let (_, _, media_body) = status(client, &media).await?;
    // The master lists the one rendition of this light stream; its playlist, segments,
    // parts, the map and the preload hint.
    for (text, at_least) in [
        (String::from_utf8(body.to_vec())?, 1),
        (String::from_utf8(media_body.to_vec())?, 4),
    ] {
        let listed = uris(&text);
        anyhow::ensure!(listed.len() >= at_least, "{text}");
        for uri in listed {
            anyhow::ensure!(
                uri.ends_with(&format!("?token={token}")),
                "{uri} does not carry the token:\n{text}"
            );
        }
    }

    // A public stream's answers are what they were: public and cacheable, no token needed.
    let (s, headers, body) = status(
        client,
        &format!("{}/live/{public}/src/index.m3u8", cluster.https),
    )
    .await?;
    anyhow::ensure!(
        s == 200 && headers["cache-control"].to_str()?.starts_with("public"),
        "{headers:?}"
    );
    anyhow::ensure!(!String::from_utf8_lossy(&body).contains("token="));

    // ffmpeg plays it from a node, and nothing without the token reached the node.
    let refused_before = refused_missing(cluster).await?;
    let played = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(format!(
            "{}/live/{PRIVATE}/master.m3u8?token={token}",
            cluster.http
        ))
        .args(["-t", "4", "-f", "null", "-"])
        .output()
        .await?;
    anyhow::ensure!(
        played.status.success(),
        "ffmpeg could not play it: {}",
        String::from_utf8_lossy(&played.stderr)
    );
    anyhow::ensure!(
        refused_missing(cluster).await? == refused_before,
        "ffmpeg fetched a URL of the private stream without its token"
    );

    // hls.js in Chromium plays the player link, and every URL it fetched carried the token.
    let mut browser = Browser::start(1280, 800).await?;
    let watched = async {
        browser
            .goto(&format!("{}/#live/{PRIVATE}?token={token}", cluster.https))
            .await?;
        browser
            .wait_for(
                "the private stream plays",
                "const v = document.getElementById('video'); return v.currentTime > 2 && !v.paused;",
                Value::Null,
                Duration::from_secs(60),
                |_| Ok(()),
            )
            .await?;
        let fetched = browser
            .execute(
                "return performance.getEntriesByType('resource').map((e) => e.name);",
                Value::Null,
            )
            .await?;
        let ours: Vec<&str> = fetched
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|u| u.contains(&format!("/live/{PRIVATE}/")))
            .collect();
        anyhow::ensure!(ours.len() > 5, "the browser fetched {ours:?}");
        for url in &ours {
            anyhow::ensure!(url.contains(&format!("token={token}")), "{url} without the token");
        }
        anyhow::Ok(ours.len())
    }
    .await;
    browser.quit().await?;
    let fetched = watched?;
    eprintln!(
        "private: Chromium fetched {fetched} URLs of the private stream, each with its token"
    );

    publisher.kill_hard();
    Ok(())
}

/// `sealcast_access_refused_total{reason="missing"}` over every node.
async fn refused_missing(cluster: &Cluster) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for node in &cluster.nodes {
        let text = cluster
            .client()
            .get(format!("{node}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        sum += testkit::prometheus::sample_sum(
            &text,
            "sealcast_access_refused_total",
            &["reason=\"missing\""],
        );
    }
    Ok(sum)
}

/// One client floods the load balancer past its request budget and is answered 429 with a
/// `Retry-After`, each refusal held for [`loadbalancer::limits::REFUSAL_HOLD`]; another
/// client, from another address, sees its requests answered as fast as before the flood.
pub(crate) async fn check_request_budget(cluster: &Cluster, public: &str) -> anyhow::Result<()> {
    let client_from = |last: u8| -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
                cluster.ca(),
            )?)?)
            .local_address(IpAddr::from([127, 0, 0, last]))
            .http1_only()
            .build()?)
    };
    let quiet = client_from(21)?;
    let flood = client_from(22)?;
    let url = format!("{}/live/{public}/master.m3u8", cluster.https);
    let measure = |client: reqwest::Client, n: usize| {
        let url = url.clone();
        async move {
            let mut took = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                let r = client.get(&url).send().await?;
                anyhow::ensure!(r.status() == 200, "the quiet client got {}", r.status());
                r.bytes().await?;
                took.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            took.sort();
            anyhow::Ok(took[took.len() / 2])
        }
    };
    let before = measure(quiet.clone(), 40).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    // The quiet client is measured once the flood is being refused, not after a guess.
    let refusing = Arc::new(tokio::sync::Notify::new());
    let mut flooders = Vec::new();
    for _ in 0..16 {
        let (client, url, stop) = (flood.clone(), url.clone(), stop.clone());
        let refusing = Arc::clone(&refusing);
        flooders.push(tokio::spawn(async move {
            let (mut ok, mut limited, mut retry_after) = (0u64, 0u64, None);
            let mut quickest_refusal = Duration::MAX;
            while !stop.is_cancelled() {
                let sent = Instant::now();
                let Ok(r) = client.get(&url).send().await else {
                    continue;
                };
                match r.status().as_u16() {
                    200 => ok += 1,
                    429 => {
                        limited += 1;
                        quickest_refusal = quickest_refusal.min(sent.elapsed());
                        refusing.notify_one();
                        retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                    }
                    _ => {}
                }
                let _ = r.bytes().await;
            }
            (ok, limited, retry_after, quickest_refusal)
        }));
    }
    tokio::time::timeout(Duration::from_secs(30), refusing.notified())
        .await
        .context("the flooding client was never answered 429")?;
    let during = measure(quiet, 40).await?;
    stop.cancel();
    let (mut ok, mut limited, mut retry_after, mut quickest) = (0, 0, None, Duration::MAX);
    for f in flooders {
        let (o, l, r, q) = f.await?;
        ok += o;
        limited += l;
        retry_after = retry_after.or(r);
        quickest = quickest.min(q);
    }
    eprintln!(
        "limits: flood {ok} answered, {limited} refused (Retry-After {retry_after:?}, the quickest refusal after {quickest:?}); quiet client median {before:?} before, {during:?} during"
    );
    anyhow::ensure!(
        limited > 0,
        "the flooding client was never refused ({ok} answered)"
    );
    anyhow::ensure!(
        retry_after
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "429 without a Retry-After: {retry_after:?}"
    );
    anyhow::ensure!(
        quickest >= loadbalancer::limits::REFUSAL_HOLD,
        "a refusal was answered after {quickest:?}, not held for {:?}",
        loadbalancer::limits::REFUSAL_HOLD
    );
    anyhow::ensure!(
        during <= before * 3 + before / 2,
        "the quiet client waited {during:?} during the flood against {before:?} before"
    );
    Ok(())
}

/// `sealcast up` with an `on_publish` hook served by this test: a refusal ends an RTMP
/// publish with an error, a hook that hangs is timed out (the publish refused), a hook
/// that allows lets it through; a hook URL in a private range is refused at configuration.
pub(crate) async fn check_hooks() -> anyhow::Result<()> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hook",
        post(|axum::Json(body): axum::Json<Value>| async move {
            let stream = body["stream"].as_str().unwrap_or_default().to_owned();
            if stream.starts_with("hang") {
                std::future::pending::<()>().await;
            }
            if stream.starts_with("refused") {
                return axum::http::StatusCode::FORBIDDEN;
            }
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Refused at configuration without --allow-private-hooks (--allow-private-webhooks
    // opens the admin API's webhooks only).
    let checked = Command::new(BIN)
        .args([
            "up",
            "--check-config",
            "--allow-private-webhooks",
            "--on-publish",
            &hook,
        ])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&checked.stderr);
    anyhow::ensure!(
        !checked.status.success(),
        "a loopback hook passed --check-config"
    );
    anyhow::ensure!(
        said.contains("on_publish") || said.contains("on-publish"),
        "{said}"
    );

    let hooked = Cluster::start_with(&[
        "--on-publish",
        &hook,
        "--on-publish-timeout",
        "1s",
        "--broadcast",
        "1",
    ])
    .await?;
    let result = async {
        for (stream, what) in [("refused-1", "refused"), ("hang-1", "timed out")] {
            let key = hooked.add_stream(stream).await?;
            let started = Instant::now();
            let publisher = TestPattern::new(426, 240, 30, 30).publish(&hooked.rtmp_url(&key))?;
            let status = tokio::time::timeout(Duration::from_secs(20), publisher.wait())
                .await
                .context("ffmpeg kept publishing past a refusing hook")??;
            anyhow::ensure!(
                !status.success(),
                "ffmpeg's publish {what} by the hook exited {status}"
            );
            eprintln!(
                "hooks: {stream} ({what}) ended after {:?}",
                started.elapsed()
            );
        }
        let key = hooked.add_stream("allowed-1").await?;
        let publisher = TestPattern::new(426, 240, 30, 60).publish(&hooked.rtmp_url(&key))?;
        hooked
            .wait_media("allowed-1", "src", 2, Duration::from_secs(60))
            .await?;
        publisher.kill_hard();
        anyhow::Ok(())
    }
    .await;
    hooked.stop_and_check_logs().await?;
    server.abort();
    result
}
