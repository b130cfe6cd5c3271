//! Starting `sealcast up` on free ports and talking to it the way users do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use m3u8_rs::{MasterPlaylist, MediaPlaylist};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sealcast");
const POLL: Duration = Duration::from_millis(200);

pub(crate) struct Cluster {
    child: tokio::sync::Mutex<Child>,
    dir: tempfile::TempDir,
    pub(crate) rtmp_addr: SocketAddr,
    /// broadcast1's base URL (no trailing slash).
    pub(crate) http: String,
    /// Every broadcast node's base URL, in order.
    pub(crate) nodes: Vec<String>,
    /// The embedded broker, as `up` printed it (`mqtt://127.0.0.1:PORT`).
    pub(crate) mqtt: String,
    /// The load balancer's HTTPS base URL (the player URL, no trailing slash).
    pub(crate) https: String,
    /// Its plain-HTTP base URL (redirects to HTTPS).
    pub(crate) http_redirect: String,
    /// The admin API key `up` made and printed on its first start.
    pub(crate) admin_key: String,
    client: reqwest::Client,
}

/// Broadcast nodes `sealcast up` runs in these tests.
pub(crate) const NODES: usize = 3;

impl Cluster {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("sealcast.toml");
        // A short grace so "vanished publisher → ENDLIST" is observable quickly.
        std::fs::write(&config, "[ingest]\nend_grace_seconds = 2.0\n").expect("config");
        let log = std::fs::File::create(dir.path().join("sealcast.log")).expect("log file");
        let mut child = Command::new(BIN)
            .args([
                "up",
                "--broadcast",
                "3",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--rtmp-listen",
                "127.0.0.1:0",
                "--broadcast-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .arg("--certs-dir")
            .arg(dir.path().join("certs"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .env("SEALCAST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("sealcast up starts");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let (mut rtmp, mut mqtt, mut nodes) = (None, None, Vec::new());
        let (mut https, mut http_redirect, mut admin_key) = (None, None, None);
        let started = tokio::time::timeout(Duration::from_secs(90), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some("obs-server"), Some(url)) => rtmp = Some(url.to_owned()),
                    (Some("mqtt"), Some(url)) => mqtt = Some(url.to_owned()),
                    (Some("admin-key"), Some(key)) => admin_key = Some(key.to_owned()),
                    (Some("player"), Some(url)) => {
                        https = Some(url.trim_end_matches('/').to_owned())
                    }
                    (Some("redirect"), Some(url)) => {
                        http_redirect = Some(url.trim_end_matches('/').to_owned())
                    }
                    (Some(id), Some(url)) if id.starts_with("broadcast") => {
                        nodes.push(url.trim_end_matches('/').to_owned());
                        if nodes.len() == NODES {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        })
        .await;
        assert!(
            started.is_ok(),
            "sealcast up did not print its URLs in time"
        );
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let rtmp = rtmp.expect("obs-server line");
        let rtmp_addr = rtmp
            .trim_start_matches("rtmp://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("rtmp address");
        assert_eq!(nodes.len(), NODES, "one line per broadcast node");
        Cluster {
            child: tokio::sync::Mutex::new(child),
            dir,
            rtmp_addr,
            http: nodes[0].clone(),
            nodes,
            mqtt: mqtt.expect("mqtt line"),
            https: https.expect("player line"),
            http_redirect: http_redirect.expect("redirect line"),
            admin_key: admin_key.expect("admin-key line"),
            client: reqwest::Client::new(),
        }
    }

    pub(crate) fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.rtmp_addr)
    }

    /// The generated CA certificate the load balancer's chain ends in.
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("certs").join("ca.pem")
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `sealcast streams add NAME` against the running cluster's catalog.
    pub(crate) async fn add_stream(&self, name: &str) -> anyhow::Result<String> {
        let out = Command::new(BIN)
            .args(["streams", "add", name, "--data-dir"])
            .arg(self.data_dir())
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "streams add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8(out.stdout)?.trim().to_owned();
        anyhow::ensure!(
            key.starts_with("sk_") && !key.contains(char::is_whitespace),
            "unexpected key output {key:?}"
        );
        Ok(key)
    }

    pub(crate) fn sealcast_source(&self, url: &str, seconds: u32) -> anyhow::Result<Publisher> {
        let child = Command::new(BIN)
            .args([
                "source",
                "--url",
                url,
                "--size",
                "1280x720",
                "--fps",
                "30",
                "--duration",
                &seconds.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Publisher {
            child,
            what: "sealcast source".into(),
        })
    }

    pub(crate) async fn get_bytes(&self, path: &str) -> anyhow::Result<bytes::Bytes> {
        let resp = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Ok(resp.bytes().await?)
    }

    async fn get_opt(&self, path: &str) -> anyhow::Result<Option<bytes::Bytes>> {
        get_opt(&self.client, &self.http, path).await
    }

    /// The cluster's HTTP client (pooled).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// GET `{base}{path}`: `None` on 404.
pub(crate) async fn get_opt(
    client: &reqwest::Client,
    base: &str,
    path: &str,
) -> anyhow::Result<Option<bytes::Bytes>> {
    let resp = client.get(format!("{base}{path}")).send().await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    anyhow::ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
    Ok(Some(resp.bytes().await?))
}

impl Cluster {
    pub(crate) async fn wait_master(
        &self,
        stream: &str,
        variants: usize,
        timeout: Duration,
    ) -> anyhow::Result<MasterPlaylist> {
        let path = format!("/live/{stream}/master.m3u8");
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(body) = self.get_opt(&path).await? {
                let master = m3u8_rs::parse_master_playlist_res(&body)
                    .map_err(|e| anyhow::anyhow!("{path} does not parse: {e:?}"))?;
                if master.variants.len() >= variants {
                    return Ok(master);
                }
                last = Some(master.variants.len());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{path}: {variants} variants not listed in time (last: {last:?})"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn wait_media(
        &self,
        stream: &str,
        rendition: &str,
        segments: usize,
        timeout: Duration,
    ) -> anyhow::Result<MediaPlaylist> {
        self.wait_media_until(stream, rendition, timeout, |p| p.segments.len() >= segments)
            .await
    }

    pub(crate) async fn wait_media_until(
        &self,
        stream: &str,
        rendition: &str,
        timeout: Duration,
        done: impl Fn(&MediaPlaylist) -> bool,
    ) -> anyhow::Result<MediaPlaylist> {
        let path = format!("/live/{stream}/{rendition}/index.m3u8");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(body) = self.get_opt(&path).await? {
                let playlist = m3u8_rs::parse_media_playlist_res(&body)
                    .map_err(|e| anyhow::anyhow!("{path} does not parse: {e:?}"))?;
                if done(&playlist) {
                    return Ok(playlist);
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{path}: condition not reached in time"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for `#EXT-X-ENDLIST` on the stream's source rung.
    pub(crate) async fn wait_ended(&self, stream: &str) -> anyhow::Result<MediaPlaylist> {
        self.wait_media_until(stream, "src", Duration::from_secs(30), |p| p.end_list)
            .await
            .with_context(|| format!("{stream} never got EXT-X-ENDLIST"))
    }

    pub(crate) async fn live_stream_names(&self) -> anyhow::Result<Vec<String>> {
        let body = self.get_bytes("/api/v1/streams").await?;
        let value: serde_json::Value = serde_json::from_slice(&body)?;
        let list = value
            .as_array()
            .or_else(|| value.get("streams").and_then(|s| s.as_array()))
            .context("streams list")?;
        Ok(list
            .iter()
            .filter(|s| s.get("live").and_then(|l| l.as_bool()).unwrap_or(true))
            .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .collect())
    }

    /// Random bytes on the RTMP port: the server must close the connection.
    pub(crate) async fn send_garbage_to_rtmp(&self) -> anyhow::Result<()> {
        let mut socket = tokio::net::TcpStream::connect(self.rtmp_addr).await?;
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        socket.write_all(&garbage).await?;
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut sink))
            .await
            .context("the server kept a garbage connection open")?
            .ok();
        Ok(())
    }

    /// Stops the cluster with SIGTERM and checks it exited cleanly without panicking.
    pub(crate) async fn stop_and_check_logs(&self) {
        let mut child = self.child.lock().await;
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        let log = std::fs::read_to_string(self.dir.path().join("sealcast.log")).unwrap_or_default();
        let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
        let _ = std::fs::create_dir_all(&artifacts);
        let _ = std::fs::write(artifacts.join("e2e-sealcast.log"), &log);
        assert!(!log.contains("panicked"), "sealcast panicked:\n{log}");
        assert!(!log.contains("sk_"), "a stream key appeared in the log");
        assert!(
            !log.contains("ak_") && !log.contains(&self.admin_key),
            "an API key appeared in the log"
        );
        let token =
            std::fs::read_to_string(self.data_dir().join("keys/push-token")).unwrap_or_default();
        assert!(
            token.trim().len() >= 16 && !log.contains(token.trim()),
            "the push token appeared in the log (or was never made)"
        );
        match status {
            Ok(Ok(s)) => assert!(
                s.success(),
                "sealcast up exited with {s} after SIGTERM\n{log}"
            ),
            other => panic!("sealcast up did not exit after SIGTERM: {other:?}"),
        }
    }
}

pub(crate) struct Publisher {
    child: Child,
    what: String,
}

impl Publisher {
    /// `ffmpeg` publishing a test pattern with AAC at real-time pace for `seconds`.
    pub(crate) fn ffmpeg_testsrc(
        url: &str,
        w: u32,
        h: u32,
        fps: u32,
        seconds: u32,
    ) -> anyhow::Result<Self> {
        Self::ffmpeg_custom(
            url,
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                &(fps * 2).to_string(),
                "-keyint_min",
                &(fps * 2).to_string(),
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-b:v",
                "1500k",
            ],
            "aac",
            w,
            h,
            fps,
            seconds,
        )
    }

    /// Like [`Publisher::ffmpeg_testsrc`] with another audio codec.
    pub(crate) fn ffmpeg_audio_codec(
        url: &str,
        audio: &str,
        w: u32,
        h: u32,
        fps: u32,
        seconds: u32,
    ) -> anyhow::Result<Self> {
        let g = (fps * 2).to_string();
        let video = [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            &g,
            "-keyint_min",
            &g,
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ];
        Self::ffmpeg_custom(url, &video, audio, w, h, fps, seconds)
    }

    pub(crate) fn ffmpeg_custom(
        url: &str,
        video: &[&str],
        audio: &str,
        w: u32,
        h: u32,
        fps: u32,
        seconds: u32,
    ) -> anyhow::Result<Self> {
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args([
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size={w}x{h}:rate={fps}"),
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
            .args(["-t", &seconds.to_string()])
            .args(video)
            .args(["-c:a", audio, "-b:a", "128k", "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting ffmpeg")?;
        Ok(Publisher {
            child,
            what: format!("ffmpeg {w}x{h}"),
        })
    }

    pub(crate) async fn wait(mut self) -> anyhow::Result<ExitStatus> {
        Ok(
            tokio::time::timeout(Duration::from_secs(120), self.child.wait())
                .await
                .context("publisher hung")??,
        )
    }

    pub(crate) async fn wait_success(mut self) -> anyhow::Result<()> {
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .context("publisher hung")??;
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err).await;
        }
        anyhow::ensure!(status.success(), "{} failed ({status}): {err}", self.what);
        Ok(())
    }

    /// SIGKILL: the publisher vanishes without an unpublish.
    pub(crate) fn kill_hard(mut self) {
        let _ = self.child.start_kill();
    }
}

/// The line a process prints when ready (shared with the deployment tests).
pub(crate) use crate::compose::stdout_line;
