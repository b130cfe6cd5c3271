//! The load balancer, the way viewers meet it: HTTPS with a client that trusts only the
//! generated CA, cookies kept per viewer, plain HTTP redirected, and clients that misbehave.

use domain::time::WallClock;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client trusting only the CA in `ca_pem` (no system roots), HTTP/2 when offered.
pub(crate) fn https_client(ca_pem: &Path) -> anyhow::Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_pem)?)?;
    Ok(reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()?)
}

/// One viewer: a client and its own cookie jar (the `sealcast_node` value it was given).
pub(crate) struct Viewer {
    client: reqwest::Client,
    base: String,
    pub(crate) cookie: Option<String>,
}

/// What one request through the load balancer answered.
pub(crate) struct Answer {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) node: Option<String>,
    pub(crate) set_cookie: Option<String>,
    pub(crate) version: reqwest::Version,
    pub(crate) body: bytes::Bytes,
}

impl Viewer {
    pub(crate) fn new(client: reqwest::Client, base: &str) -> Self {
        Viewer {
            client,
            base: base.trim_end_matches('/').to_owned(),
            cookie: None,
        }
    }

    /// GET `path`, sending the jar's cookie and keeping the one set.
    pub(crate) async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, version) = (response.status(), response.version());
        let node = header("x-sealcast-node");
        let set_cookie = header("set-cookie");
        if let Some(set) = &set_cookie {
            // `name=value` only, as a browser sends it back.
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        let body = response.bytes().await?;
        Ok(Answer {
            status,
            node,
            set_cookie,
            version,
            body,
        })
    }
}

/// The first segment URI of a media playlist body.
fn first_segment(playlist: &[u8]) -> Option<String> {
    std::str::from_utf8(playlist)
        .ok()?
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

/// A viewer watching `stream` for `rounds` rounds of master, media playlist and newest
/// segment; returns the nodes that answered, in order.
pub(crate) async fn watch(
    viewer: &mut Viewer,
    stream: &str,
    rendition: &str,
    rounds: usize,
) -> anyhow::Result<Vec<String>> {
    let mut nodes = Vec::new();
    for _ in 0..rounds {
        let paths = [
            format!("/live/{stream}/master.m3u8"),
            format!("/live/{stream}/{rendition}/index.m3u8"),
        ];
        let mut media = None;
        for path in &paths {
            let answer = viewer.get(path).await?;
            anyhow::ensure!(answer.status.is_success(), "GET {path}: {}", answer.status);
            nodes.push(answer.node.context("no x-sealcast-node")?);
            media = Some(answer.body);
        }
        let segment = media
            .as_deref()
            .and_then(first_segment)
            .context("a media playlist with no segment")?;
        let path = format!("/live/{stream}/{rendition}/{segment}");
        let answer = viewer.get(&path).await?;
        anyhow::ensure!(answer.status.is_success(), "GET {path}: {}", answer.status);
        anyhow::ensure!(
            matches!(answer.body.get(4..8), Some(b"moof" | b"styp" | b"emsg")),
            "{path} is not a CMAF fragment"
        );
        nodes.push(answer.node.context("no x-sealcast-node")?);
    }
    Ok(nodes)
}

/// Waits until `stream` plays through the load balancer.
pub(crate) async fn wait_live(
    client: &reqwest::Client,
    base: &str,
    stream: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("{base}/live/{stream}/master.m3u8");
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{stream} never played through the load balancer"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stickiness, spread, HTTP/2, the redirect from plain HTTP, and misbehaving clients, on
/// the load balancer of `sealcast up` while `stream` is live.
pub(crate) async fn check_sticky_and_bad_requests(
    https: &str,
    http: &str,
    ca: &Path,
    stream: &str,
) -> anyhow::Result<()> {
    let client = https_client(ca)?;
    wait_live(&client, https, stream).await?;

    // A slow client on each port, holding its connection open for the whole check.
    let addr = |url: &str| -> anyhow::Result<SocketAddr> {
        let host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .context("url")?;
        let port: u16 = host.rsplit(':').next().context("port")?.parse()?;
        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
    };
    let (https_addr, http_addr) = (addr(https)?, addr(http)?);
    let mut slow_tls = tokio::net::TcpStream::connect(https_addr).await?;
    slow_tls.write_all(&[0x16, 0x03, 0x01]).await?; // the start of a ClientHello, then nothing
    let mut slow_http = tokio::net::TcpStream::connect(http_addr).await?;
    slow_http
        .write_all(b"GET /live/ HTTP/1.1\r\nHost: local")
        .await?;

    // One viewer, 50 requests (master, playlist, segment): one node throughout, on h2.
    let mut viewer = Viewer::new(client.clone(), https);
    let first = viewer.get(&format!("/live/{stream}/master.m3u8")).await?;
    anyhow::ensure!(
        first.version == reqwest::Version::HTTP_2,
        "HTTPS did not negotiate HTTP/2: {:?}",
        first.version
    );
    let set = first
        .set_cookie
        .context("the first response set no cookie")?;
    for attribute in [
        "sealcast_node=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        anyhow::ensure!(set.contains(attribute), "cookie lacks {attribute}: {set}");
    }
    let pinned = first.node.context("no x-sealcast-node")?;
    let mut nodes = Vec::new();
    while nodes.len() < 49 {
        nodes.extend(watch(&mut viewer, stream, "src", 1).await?);
    }
    anyhow::ensure!(
        nodes.iter().all(|n| *n == pinned),
        "a viewer pinned to {pinned} was answered by {:?}",
        nodes.iter().filter(|n| **n != pinned).collect::<Vec<_>>()
    );

    // Ten viewers with their own jars spread over at least two nodes.
    let mut spread = BTreeMap::<String, usize>::new();
    for _ in 0..10 {
        let mut viewer = Viewer::new(https_client(ca)?, https);
        let nodes = watch(&mut viewer, stream, "src", 2).await?;
        anyhow::ensure!(
            nodes.windows(2).all(|w| w[0] == w[1]),
            "one viewer moved between nodes: {nodes:?}"
        );
        *spread.entry(nodes[0].clone()).or_default() += 1;
    }
    anyhow::ensure!(spread.len() >= 2, "ten viewers all on one node: {spread:?}");

    // A forged cookie, and one naming a node that does not exist: ignored, a new one set.
    for forged in [
        format!(
            "sealcast_node=v1.{pinned}.{}.{}",
            WallClock.unix_secs(),
            "0".repeat(64)
        ),
        format!(
            "sealcast_node=v1.nosuchnode.{}.{}",
            WallClock.unix_secs(),
            "ab".repeat(32)
        ),
        "sealcast_node=garbage".to_owned(),
    ] {
        let mut viewer = Viewer::new(client.clone(), https);
        viewer.cookie = Some(forged.clone());
        let answer = viewer.get(&format!("/live/{stream}/master.m3u8")).await?;
        anyhow::ensure!(answer.status.is_success(), "{forged}: {}", answer.status);
        let reissued = answer.set_cookie.unwrap_or_default();
        anyhow::ensure!(
            reissued.starts_with("sealcast_node=v1.") && !reissued.contains(&forged),
            "{forged}: the cookie was not replaced ({reissued})"
        );
    }

    // An absurd Host header: 400 with a JSON body, over HTTP/1.1.
    let h1 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?)
        .http1_only()
        .build()?;
    for host in ["evil.example/../../etc", &"a".repeat(2000), "x y"] {
        let r = h1
            .get(format!("{https}/live/{stream}/master.m3u8"))
            .header("host", host)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 400, "Host {host:.30}: {}", r.status());
        let body: serde_json::Value = r.json().await?;
        anyhow::ensure!(body.get("error").is_some(), "no JSON error body");
    }

    // Oversized headers: refused (4xx or the connection closed), never a 5xx or a hang.
    let huge = "x".repeat(2 * 1024 * 1024);
    match h1
        .get(format!("{https}/live/{stream}/master.m3u8"))
        .header("x-huge", huge)
        .send()
        .await
    {
        Ok(r) => anyhow::ensure!(
            r.status().is_client_error(),
            "oversized headers got {}",
            r.status()
        ),
        Err(e) => anyhow::ensure!(!e.is_timeout(), "oversized headers hung: {e}"),
    }

    // Plain HTTP: a redirect to the same path over HTTPS; the load balancer's own health
    // is answered there.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = plain
        .get(format!("{http}/live/{stream}/master.m3u8?x=1"))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_redirection(), "plain HTTP got {}", r.status());
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        location == format!("{https}/live/{stream}/master.m3u8?x=1"),
        "redirected to {location}"
    );
    let health = plain.get(format!("{http}/healthz")).send().await?;
    anyhow::ensure!(
        health.status() == 200,
        "plain /healthz: {}",
        health.status()
    );
    // Following the redirect with the CA-only client plays.
    let followed = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?)
        .build()?
        .get(format!("{http}/live/{stream}/master.m3u8"))
        .send()
        .await?;
    anyhow::ensure!(
        followed.status() == 200,
        "after the redirect: {}",
        followed.status()
    );

    // The slow clients held their connections all along and bothered no one; the
    // pinned viewer still gets answers from its node.
    let nodes = watch(&mut viewer, stream, "src", 1).await?;
    anyhow::ensure!(nodes.iter().all(|n| *n == pinned), "moved: {nodes:?}");
    let mut buf = [0u8; 64];
    let pending = tokio::time::timeout(Duration::from_millis(100), slow_http.read(&mut buf)).await;
    anyhow::ensure!(
        pending.is_err(),
        "the slow plain-HTTP client was answered before finishing its request"
    );
    drop((slow_tls, slow_http));
    Ok(())
}

/// ffmpeg reading a live rendition through the load balancer, pinned by `cookie`.
pub(crate) fn ffmpeg_viewer(
    url: &str,
    cookie: &str,
    ca: &Path,
    seconds: u32,
    out: &Path,
) -> anyhow::Result<tokio::process::Child> {
    Ok(tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .arg("-ca_file")
        .arg(ca)
        .args(["-tls_verify", "1"])
        .args(["-cookies", &format!("{cookie}; path=/\n")])
        .args([
            "-i",
            url,
            "-t",
            &seconds.to_string(),
            "-c",
            "copy",
            "-f",
            "mpegts",
            "-y",
        ])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?)
}

/// Waits until a file has some bytes.
pub(crate) async fn wait_for_bytes(path: &Path) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "nothing was written to {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
