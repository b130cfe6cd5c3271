//! Starting `sealcast up` on free ports and talking to it the way users do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use m3u8_rs::{MasterPlaylist, MediaPlaylist};
use testkit::ffmpeg::Publisher;
use testkit::process::Spawned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sealcast");
const POLL: Duration = Duration::from_millis(200);

/// `sealcast up` with three broadcast nodes, as the tests reach it.
pub(crate) struct Cluster {
    /// The process, until [`Cluster::stop_and_check_logs`] takes it.
    process: tokio::sync::Mutex<Option<Spawned>>,
    dir: tempfile::TempDir,
    pub(crate) rtmp_addr: SocketAddr,
    /// The SRT listener (UDP), as `up` printed it (`srt-server srt://HOST:PORT`).
    srt_addr: SocketAddr,
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
    /// Its plain-HTTP origin listener for a cache in front (`--origin-listen`), as `up`
    /// printed it (`origin http://HOST:PORT/`, no trailing slash here).
    pub(crate) origin: String,
    /// The admin API key `up` made and printed on its first start.
    pub(crate) admin_key: String,
    client: reqwest::Client,
}

/// Broadcast nodes `sealcast up` runs in these tests.
pub(crate) const NODES: usize = 3;

impl Cluster {
    /// Starts `sealcast up` on free ports in a temporary directory and reads its URLs from
    /// its stdout.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// [`Cluster::start`] with more arguments for `up`; a `--broadcast N` among them
    /// replaces the default [`NODES`].
    pub(crate) async fn start_with(extra: &[&str]) -> anyhow::Result<Self> {
        let mut node_count = NODES;
        let mut extra_args = Vec::new();
        let mut given = extra.iter();
        while let Some(arg) = given.next() {
            if *arg == "--broadcast" {
                node_count = given
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("--broadcast takes a number")?;
            } else {
                extra_args.push(*arg);
            }
        }
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("sealcast.toml");
        // A short grace so "vanished publisher → ENDLIST" is observable quickly.
        std::fs::write(&config, "[ingest]\nend_grace_seconds = 2.0\n")?;
        let mut command = Command::new(BIN);
        command
            .args([
                "up",
                "--broadcast",
                &node_count.to_string(),
                "--mqtt-listen",
                "127.0.0.1:0",
                "--rtmp-listen",
                "127.0.0.1:0",
                "--srt-listen",
                "127.0.0.1:0",
                "--webrtc-listen",
                "127.0.0.1:0",
                "--broadcast-listen",
                "127.0.0.1:0",
                "--https-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--origin-listen",
                "127.0.0.1:0",
            ])
            .arg("--certs-dir")
            .arg(dir.path().join("certs"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            // The webhook and hook receivers of these tests listen on loopback.
            .arg("--allow-private-webhooks")
            .arg("--allow-private-hooks")
            .args(&extra_args)
            .env("SEALCAST_LOG", "info");
        let mut up = Spawned::start("sealcast up", command, &dir.path().join("sealcast.log"))?;
        let (mut rtmp, mut mqtt, mut nodes, mut srt) = (None, None, Vec::new(), None);
        let (mut https, mut http_redirect, mut admin_key) = (None, None, None);
        let mut origin = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while nodes.len() < node_count {
            let line = up
                .next_line(deadline)
                .await?
                .with_context(|| format!("sealcast up exited; its log:\n{}", up.log()))?;
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("obs-server"), Some(url)) => rtmp = Some(url.to_owned()),
                (Some("srt-server"), Some(url)) => srt = Some(url.to_owned()),
                (Some("mqtt"), Some(url)) => mqtt = Some(url.to_owned()),
                (Some("admin-key"), Some(key)) => admin_key = Some(key.to_owned()),
                (Some("player"), Some(url)) => https = Some(url.trim_end_matches('/').to_owned()),
                (Some("redirect"), Some(url)) => {
                    http_redirect = Some(url.trim_end_matches('/').to_owned())
                }
                (Some("origin"), Some(url)) => origin = Some(url.trim_end_matches('/').to_owned()),
                (Some(id), Some(url)) if id.starts_with("broadcast") => {
                    nodes.push(url.trim_end_matches('/').to_owned());
                }
                _ => {}
            }
        }
        up.drain();
        let rtmp = rtmp.context("no obs-server line")?;
        let rtmp_addr = rtmp
            .trim_start_matches("rtmp://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .context("rtmp address")?;
        let srt_addr = srt
            .context("no srt-server line")?
            .trim_start_matches("srt://")
            .parse()
            .context("srt address")?;
        // Trusts the cluster's CA, so it reaches the load balancer's HTTPS as well.
        let ca = std::fs::read(dir.path().join("certs").join("ca.pem"))?;
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .build()?;
        Ok(Cluster {
            process: tokio::sync::Mutex::new(Some(up)),
            dir,
            rtmp_addr,
            srt_addr,
            http: nodes[0].clone(),
            nodes,
            mqtt: mqtt.context("no mqtt line")?,
            https: https.context("no player line")?,
            http_redirect: http_redirect.context("no redirect line")?,
            origin: origin.context("no origin line")?,
            admin_key: admin_key.context("no admin-key line")?,
            client,
        })
    }

    pub(crate) fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.rtmp_addr)
    }

    /// The SRT URL an OBS user types: the key in the access-control streamid.
    pub(crate) fn srt_url(&self, key: &str) -> String {
        format!(
            "srt://{}?streamid=#!::r=live/{key},m=publish",
            self.srt_addr
        )
    }

    /// The SRT URL with the bare key as streamid.
    pub(crate) fn srt_url_bare(&self, key: &str) -> String {
        format!("srt://{}?streamid={key}", self.srt_addr)
    }

    /// Where the SRT listener is.
    pub(crate) fn srt_addr(&self) -> SocketAddr {
        self.srt_addr
    }

    /// The generated CA certificate the load balancer's chain ends in.
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("certs").join("ca.pem")
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The embedded broker's URL with its login (the password from the key directory):
    /// a secret, passed to child processes in `SEALCAST_MQTT_URL`, never as an argument.
    pub(crate) fn mqtt_login_url(&self) -> anyhow::Result<String> {
        let password = std::fs::read_to_string(self.data_dir().join("keys/broker-password"))
            .context("reading the broker password")?;
        let host_port = self
            .mqtt
            .strip_prefix("mqtt://")
            .context("the printed broker address is not mqtt://")?;
        Ok(format!(
            "mqtt://{}:{}@{host_port}",
            plumbing::EMBEDDED_BROKER_USER,
            password.trim()
        ))
    }

    /// The embedded broker's address with its login.
    pub(crate) fn broker(&self) -> anyhow::Result<domain::broker::BrokerAddress> {
        Ok(self.mqtt_login_url()?.parse()?)
    }

    /// `sealcast streams add NAME` against the running cluster's catalog.
    pub(crate) async fn add_stream(&self, name: &str) -> anyhow::Result<String> {
        self.add_stream_with(name, &[]).await
    }

    /// `sealcast streams add NAME` with `extra` options (`--private`): the key alone.
    pub(crate) async fn add_stream_with(
        &self,
        name: &str,
        extra: &[&str],
    ) -> anyhow::Result<String> {
        let out = Command::new(BIN)
            .args(["streams", "add", name])
            .args(extra)
            .arg("--data-dir")
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

    /// `sealcast source` publishing a 720p30 test pattern to `url` for `seconds`.
    pub(crate) fn sealcast_source(&self, url: &str, seconds: u32) -> anyhow::Result<Publisher> {
        self.sealcast_source_sized(url, "1280x720", seconds)
    }

    /// `sealcast source` publishing a `size` (`854x480`) 30 fps test pattern to `url`.
    pub(crate) fn sealcast_source_sized(
        &self,
        url: &str,
        size: &str,
        seconds: u32,
    ) -> anyhow::Result<Publisher> {
        let child = Command::new(BIN)
            .args([
                "source",
                "--url",
                url,
                "--size",
                size,
                "--fps",
                "30",
                "--duration",
                &seconds.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Publisher::from_child(child, "sealcast source"))
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

    /// The cluster's HTTP client (pooled; trusts its CA).
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

    /// What `sealcast up` logged so far.
    pub(crate) async fn log(&self) -> String {
        match self.process.lock().await.as_ref() {
            Some(up) => std::fs::read_to_string(up.log_path()).unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The `sealcast up` process's id, while it runs (its memory is read from `/proc`).
    pub(crate) async fn pid(&self) -> Option<u32> {
        self.process.lock().await.as_ref().and_then(|p| p.id())
    }

    /// Stops the cluster with SIGTERM: it must exit cleanly without panicking, and its log
    /// (kept in `tests/artifacts/`) must hold no stream key, API key or push token.
    pub(crate) async fn stop_and_check_logs(&self) -> anyhow::Result<()> {
        let up = self
            .process
            .lock()
            .await
            .take()
            .context("the cluster was stopped already")?;
        let log_path = up.log_path().to_path_buf();
        let stopped = up.stop(Duration::from_secs(30)).await;
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
        let _ = std::fs::create_dir_all(&artifacts);
        let _ = std::fs::write(artifacts.join("e2e-sealcast.log"), &log);
        anyhow::ensure!(!log.contains("sk_"), "a stream key appeared in the log");
        anyhow::ensure!(
            !log.contains("ak_") && !log.contains(&self.admin_key),
            "an API key appeared in the log"
        );
        let token =
            std::fs::read_to_string(self.data_dir().join("keys/push-token")).unwrap_or_default();
        anyhow::ensure!(
            token.trim().len() >= 16 && !log.contains(token.trim()),
            "the push token appeared in the log (or was never made)"
        );
        let password = std::fs::read_to_string(self.data_dir().join("keys/broker-password"))
            .unwrap_or_default();
        anyhow::ensure!(
            password.trim().len() == 64 && !log.contains(password.trim()),
            "the broker password appeared in the log (or was never made)"
        );
        stopped.map(drop)
    }
}
