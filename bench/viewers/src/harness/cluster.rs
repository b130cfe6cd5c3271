//! The live stream a benchmark measures, as separate processes (bench/lib.sh's
//! `bench_mosquitto`, `bench_ll_cluster`, `bench_ll_publish`, `bench_ll_lb`, and the
//! scripts' node and relay starts): a mosquitto broker of the run's own, keys and
//! certificates, the stream in the catalog, `sealcast ingest` and `sealcast source`
//! publishing it, `sealcast broadcast` nodes, `sealcast lb` over TLS, moq-relays.
//!
//! The stream key goes from `sealcast streams add`'s output to a file in the run's
//! directory and to the source through its environment (`SEALCAST_SOURCE_URL`), never a
//! command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

pub use super::relay::moq_relay;
use super::{get, os_args, peer_file, program, render, wait_for, Work};
use crate::live::free_port;

/// A live stream's settings and files: `sealcast keys init` in `DATA`, `sealcast certs`,
/// the stream in the catalog, and `sealcast.toml`: the source rung only, named `360p`
/// (the publisher's H.264, not re-encoded: no transcode CPU anywhere), CMAF, 2 s segments,
/// LL-HLS parts of `part_target` seconds (0: none), a window of 6.
#[derive(Debug)]
pub struct LlCluster {
    /// The `sealcast` binary under test.
    pub bin: PathBuf,
    /// The stream's name.
    pub stream: String,
    /// `--data-dir`: keys and catalog.
    pub data: PathBuf,
    /// `--certs-dir`.
    pub certs: PathBuf,
    /// The CA's certificate, which the load balancer's chains to.
    pub ca: PathBuf,
    /// `--config`.
    pub config: PathBuf,
    /// The broker's URL (`SEALCAST_MQTT_URL` of every role started here).
    pub mqtt_url: String,
}

/// A process started here: its pid and where it answers.
#[derive(Debug, Clone)]
pub struct Started {
    /// The name it was started as (its logs: `NAME.out`, `NAME.err`).
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// Its base URL (`http://127.0.0.1:PORT`, `https://localhost:PORT`).
    pub url: String,
}

/// The ingest and the source publishing to it.
#[derive(Debug, Clone, Copy)]
pub struct Publishing {
    /// `sealcast ingest`.
    pub ingest: u32,
    /// `sealcast source`.
    pub source: u32,
}

/// A mosquitto broker of the run's own on a free port of 127.0.0.1 (anonymous, no
/// persistence, `bench/peers/mosquitto/mosquitto.conf`), pinned to `core`; its URL once
/// it accepts connections.
pub fn mosquitto(work: &mut Work, core: &str) -> anyhow::Result<String> {
    let port = free_port()?.to_string();
    let conf = work.path("mosquitto.conf");
    render(
        &peer_file("mosquitto/mosquitto.conf"),
        &conf,
        &[("PORT", &port)],
    )?;
    let pid = work.start(
        "mosquitto",
        core,
        &program("mosquitto"),
        ["-c".as_ref(), conf.as_os_str()],
        &[],
    )?;
    let addr = format!("127.0.0.1:{port}");
    if !wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(&addr).is_ok()
    }) {
        work.alive(pid, "mosquitto")?;
        bail!("mosquitto did not listen in 10 s{}", work.logs());
    }
    Ok(format!("mqtt://{addr}"))
}

/// Runs `sealcast ARGS` (`what`: how a failure names it) to its end, without the
/// environment's `SEALCAST_*` settings; what it printed on stdout. What it printed there
/// may be a secret (a stream key): a failure shows only its stderr.
pub fn one_shot(bin: &Path, what: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<Vec<u8>> {
    let mut command = std::process::Command::new(bin);
    super::clean_env(&mut command);
    let out = command
        .args(args)
        .output()
        .with_context(|| format!("running sealcast {what}"))?;
    ensure!(
        out.status.success(),
        "sealcast {what} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// `sealcast certs` into `WORK/certs` and `sealcast keys init` into `WORK/data`, as a
/// script made them for a load balancer of its own (bench/lb.sh, bench/lb-profile.sh);
/// the two directories.
pub fn keys_and_certs(work: &Work, bin: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (data, certs) = (work.path("data"), work.path("certs"));
    one_shot(
        bin,
        "certs",
        &["certs".as_ref(), "--certs-dir".as_ref(), certs.as_os_str()],
    )?;
    one_shot(
        bin,
        "keys init",
        &[
            "keys".as_ref(),
            "init".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
    )?;
    Ok((data, certs))
}

impl LlCluster {
    /// Keys, certificates, the stream and the configuration in `work`, for the broker at
    /// `mqtt_url`.
    pub fn setup(
        work: &Work,
        bin: &Path,
        stream: &str,
        part_target: f64,
        mqtt_url: &str,
    ) -> anyhow::Result<LlCluster> {
        let data = work.path("data");
        let certs = work.path("certs");
        let one_shot = |what: &str, args: &[&std::ffi::OsStr]| one_shot(bin, what, args);
        one_shot(
            "keys init",
            &[
                "keys".as_ref(),
                "init".as_ref(),
                "--data-dir".as_ref(),
                data.as_os_str(),
            ],
        )?;
        one_shot(
            "certs",
            &["certs".as_ref(), "--certs-dir".as_ref(), certs.as_os_str()],
        )?;
        let key = one_shot(
            "streams add",
            &[
                "streams".as_ref(),
                "--data-dir".as_ref(),
                data.as_os_str(),
                "add".as_ref(),
                stream.as_ref(),
            ],
        )?;
        let key = String::from_utf8(key).context("the stream key is not UTF-8")?;
        ensure!(
            !key.trim().is_empty(),
            "sealcast streams add printed no key"
        );
        std::fs::write(work.path("stream-key"), key.trim())?;
        let config = work.path("sealcast.toml");
        std::fs::write(&config, ll_config(part_target))?;
        Ok(LlCluster {
            bin: bin.to_path_buf(),
            stream: stream.to_owned(),
            data,
            ca: certs.join("ca.pem"),
            certs,
            config,
            mqtt_url: mqtt_url.to_owned(),
        })
    }

    /// The environment of every role started here: the broker.
    fn env(&self) -> [(&str, &str); 1] {
        [("SEALCAST_MQTT_URL", self.mqtt_url.as_str())]
    }

    /// A media playlist's path: `/live/STREAM/RUNG/index.m3u8`.
    pub fn playlist(&self, rung: &str) -> String {
        format!("/live/{}/{rung}/index.m3u8", self.stream)
    }

    /// The master playlist's path.
    pub fn master(&self) -> String {
        format!("/live/{}/master.m3u8", self.stream)
    }

    /// A broadcast node `name` on a free port, on `cores` (pin it later when it starts on
    /// both: tokio sizes its runtime from the cores it may use), with `extra` arguments and
    /// `envs`; once it reports ready.
    pub fn node(
        &self,
        work: &mut Work,
        name: &str,
        cores: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Started> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let recordings = work.path(format!("rec-{name}"));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "broadcast".as_ref(),
            "--data-dir".as_ref(),
            self.data.as_os_str(),
            "--config".as_ref(),
            self.config.as_os_str(),
            "--listen".as_ref(),
            listen.as_ref(),
            "--node-id".as_ref(),
            name.as_ref(),
            "--recordings".as_ref(),
            recordings.as_os_str(),
            "--ready-timeout".as_ref(),
            "2".as_ref(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let envs: Vec<(&str, &str)> = self.env().into_iter().chain(envs.iter().copied()).collect();
        let pid = work.start(name, cores, &self.bin, args, &envs)?;
        let ready = format!("{name} ");
        if !wait_for(Duration::from_secs(30), || work.out_has_line(name, &ready)) {
            work.alive(pid, name)?;
            bail!("{name} did not report ready in 30 s{}", work.logs());
        }
        Ok(Started {
            name: name.to_owned(),
            pid,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// `sealcast ingest` (RTMP on a free port) and `sealcast source` (a 640x360 30 fps
    /// test pattern, ~730 kb/s, 2 s GOP, real time) publishing the stream with its key
    /// through the source's environment, both on `core`.
    pub fn publish(&self, work: &mut Work, core: &str) -> anyhow::Result<Publishing> {
        let rtmp = free_port()?;
        let rtmp_listen = format!("127.0.0.1:{rtmp}");
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let ingest = work.start(
            "ingest",
            core,
            &self.bin,
            os_args(&[
                "ingest".as_ref(),
                "--data-dir".as_ref(),
                self.data.as_os_str(),
                "--config".as_ref(),
                self.config.as_os_str(),
                "--rtmp-listen".as_ref(),
                rtmp_listen.as_ref(),
                "--srt-listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--webrtc-listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                // Else WHIP's HTTP listener takes 0.0.0.0:8088, and two runs collide.
                "--whip-listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--metrics-listen".as_ref(),
                metrics.as_ref(),
                "--node-id".as_ref(),
                "ingest1".as_ref(),
            ]),
            &self.env(),
        )?;
        if !wait_for(Duration::from_secs(30), || {
            work.out_has_line("ingest", "obs-server ")
        }) {
            work.alive(ingest, "the ingest")?;
            bail!("the ingest did not start in 30 s{}", work.logs());
        }
        let key = std::fs::read_to_string(work.path("stream-key"))?;
        let url = format!("rtmp://{rtmp_listen}/live/{key}");
        let source = work.start(
            "source",
            core,
            &self.bin,
            [
                "source",
                "--size",
                "640x360",
                "--fps",
                "30",
                "--bitrate",
                "730",
                "--gop",
                "2",
            ],
            &[("SEALCAST_SOURCE_URL", &url)],
        )?;
        Ok(Publishing { ingest, source })
    }

    /// Waits up to `within` for `node` to list a window to join on `rung`: three segments
    /// and parts (`sealcast-bench check ll-window`).
    pub fn wait_listed(&self, node: &str, rung: &str, within: Duration) -> bool {
        let url = format!("{node}{}", self.playlist(rung));
        wait_for(within, || {
            get(&url, None, 2)
                .is_some_and(|body| crate::live::window_listed(&String::from_utf8_lossy(&body)))
        })
    }

    /// `sealcast lb` over TLS in front of the cluster (the certificates made here, nodes
    /// found by their signed presence), on a free port and both cores until pinned, with
    /// `envs`; once `path` answers 200 through it.
    pub fn lb(
        &self,
        work: &mut Work,
        name: &str,
        path: &str,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Started> {
        self.lb_on(work, name, "0,1", path, envs)
    }

    /// [`LlCluster::lb`] started on `cores` (`taskset -c`: "0", "0,1").
    pub fn lb_on(
        &self,
        work: &mut Work,
        name: &str,
        cores: &str,
        path: &str,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Started> {
        let started = self.start_lb(work, name, cores, &[], envs)?;
        let probe = format!("{}{path}", started.url);
        if !wait_for(Duration::from_secs(30), || {
            get(&probe, Some(&self.ca), 3).is_some()
        }) {
            work.alive(started.pid, name)?;
            bail!("{name} did not answer 200 in 30 s{}", work.logs());
        }
        Ok(started)
    }

    /// `sealcast lb` as [`LlCluster::lb`] starts it, but on `cores` and with `extra`
    /// arguments after the others (bench/llhls-cdn.sh's `--origin-listen`), not waited
    /// for: the caller waits for what it needs.
    pub fn lb_started(
        &self,
        work: &mut Work,
        name: &str,
        cores: &str,
        extra: &[&str],
    ) -> anyhow::Result<Started> {
        self.start_lb(work, name, cores, extra, &[])
    }

    /// Starts `sealcast lb` (HTTPS on a free port, its HTTP and metrics listeners too).
    fn start_lb(
        &self,
        work: &mut Work,
        name: &str,
        cores: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Started> {
        let port = free_port()?;
        let https = format!("127.0.0.1:{port}");
        let http = format!("127.0.0.1:{}", free_port()?);
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let envs: Vec<(&str, &str)> = self.env().into_iter().chain(envs.iter().copied()).collect();
        let mut args = os_args(&[
            "lb".as_ref(),
            "--data-dir".as_ref(),
            self.data.as_os_str(),
            "--certs-dir".as_ref(),
            self.certs.as_os_str(),
            "--https-listen".as_ref(),
            https.as_ref(),
            "--http-listen".as_ref(),
            http.as_ref(),
            "--metrics-listen".as_ref(),
            metrics.as_ref(),
            "--node-id".as_ref(),
            name.as_ref(),
            "--no-access-log".as_ref(),
            "--no-limits".as_ref(),
        ]);
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let pid = work.start(name, cores, &self.bin, args, &envs)?;
        Ok(Started {
            name: name.to_owned(),
            pid,
            url: format!("https://localhost:{port}"),
        })
    }
}

/// `sealcast source` publishing a 1280x720 30 fps test pattern (3000 kb/s, 2 s GOP; for
/// `duration` seconds when given, else until stopped) to `source_url` (an RTMP URL with
/// the stream key, which goes only into its environment), not pinned, started as `name`.
pub fn source_720p(
    work: &mut Work,
    bin: &Path,
    name: &str,
    source_url: &str,
    duration: Option<&str>,
) -> anyhow::Result<u32> {
    let mut args = vec![
        "source",
        "--size",
        "1280x720",
        "--fps",
        "30",
        "--bitrate",
        "3000",
        "--gop",
        "2",
    ];
    if let Some(duration) = duration {
        args.extend(["--duration", duration]);
    }
    work.start_unpinned(name, bin, args, &[("SEALCAST_SOURCE_URL", source_url)])
}

/// Adds `stream` to the catalog in `data` (`sealcast streams add`, beside a running
/// cluster); its key, the last line printed, which goes nowhere but to the caller.
pub fn add_stream(bin: &Path, data: &Path, stream: &str) -> anyhow::Result<String> {
    let mut command = std::process::Command::new(bin);
    super::clean_env(&mut command);
    let out = command
        .args(["streams", "add", stream, "--data-dir"])
        .arg(data)
        .stderr(std::process::Stdio::null())
        .output()
        .context("running sealcast streams add")?;
    ensure!(out.status.success(), "sealcast streams add {stream} failed");
    let text = String::from_utf8(out.stdout).context("the stream key is not UTF-8")?;
    let key = text.lines().last().unwrap_or_default().to_owned();
    ensure!(!key.is_empty(), "sealcast streams add printed no key");
    Ok(key)
}

/// The configuration of the latency benchmarks' clusters (bench/lib.sh's
/// `bench_latency_config`): the ingest's end grace of 2 s, CMAF, 2 s segments, a window
/// of 6, parts of `part_target` (as written), the source rung `src` only or, with `full`,
/// also the default ladder's three x264 rungs (720p 3000, 480p 1200, 360p 730 kb/s; VBV
/// maxrate 107 %, buffer 150 %).
pub fn latency_config(part_target: &str, full: bool) -> String {
    let mut text = format!(
        "[ingest]\nend_grace_seconds = 2.0\n\n[ladder]\nsegment_target = 2.0\nwindow = 6\n\
         preset = \"veryfast\"\nformat = \"cmaf\"\npart_target = {part_target}\n\n\
         [[ladder.rungs]]\nname = \"src\"\nkind = \"source\"\n"
    );
    if full {
        for (name, height, kbps) in [("720p", 720, 3000), ("480p", 480, 1200), ("360p", 360, 730)] {
            text.push_str(&format!(
                "\n[[ladder.rungs]]\nname = \"{name}\"\nkind = \"encode\"\nheight = {height}\n\
                 bitrate_kbps = {kbps}\nmaxrate_kbps = {}\nbufsize_kbits = {}\n",
                kbps * 107 / 100,
                kbps * 3 / 2
            ));
        }
    }
    text
}

/// The configuration of [`LlCluster::setup`].
pub fn ll_config(part_target: f64) -> String {
    format!(
        "[ladder]\nsegment_target = 2.0\nwindow = 6\npreset = \"veryfast\"\nformat = \"cmaf\"\n\
         part_target = {part_target}\n[[ladder.rungs]]\nname = \"360p\"\nkind = \"source\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_config_is_the_scripts() {
        // What bench/lib.sh's bench_latency_config printed for 0.333 full.
        let expected = "[ingest]\nend_grace_seconds = 2.0\n\n[ladder]\nsegment_target = 2.0\n\
            window = 6\npreset = \"veryfast\"\nformat = \"cmaf\"\npart_target = 0.333\n\n\
            [[ladder.rungs]]\nname = \"src\"\nkind = \"source\"\n\n[[ladder.rungs]]\n\
            name = \"720p\"\nkind = \"encode\"\nheight = 720\nbitrate_kbps = 3000\n\
            maxrate_kbps = 3210\nbufsize_kbits = 4500\n\n[[ladder.rungs]]\nname = \"480p\"\n\
            kind = \"encode\"\nheight = 480\nbitrate_kbps = 1200\nmaxrate_kbps = 1284\n\
            bufsize_kbits = 1800\n\n[[ladder.rungs]]\nname = \"360p\"\nkind = \"encode\"\n\
            height = 360\nbitrate_kbps = 730\nmaxrate_kbps = 781\nbufsize_kbits = 1095\n";
        assert_eq!(latency_config("0.333", true), expected);
        let src = latency_config("0.333", false);
        assert!(
            src.ends_with(
                "part_target = 0.333\n\n[[ladder.rungs]]\nname = \"src\"\nkind = \"source\"\n"
            ),
            "{src}"
        );
    }

    #[test]
    fn the_config_is_the_source_rung_with_parts() {
        let config = ll_config(0.333);
        assert!(config.contains("part_target = 0.333\n"), "{config}");
        assert!(
            config.contains("name = \"360p\"\nkind = \"source\""),
            "{config}"
        );
    }
}
