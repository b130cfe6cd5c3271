//! The interop matrix (issue 51): common publishers and players, each with its defaults
//! (only the URL and the key or token given, and the cluster's CA where the client verifies
//! TLS), against `sealcast up`. Every row passes, or says why the client cannot do it; the
//! table goes to `sealcast/tests/artifacts/interop.md`, and to `docs/interop.md` with
//! `SEALCAST_WRITE_INTEROP=1` (a maintainer's run; CI's copy is the artifact).
//!
//! A row that fails for a reason of ours is listed in [`KNOWN_FAILURES`] with what is
//! known, so the table says so; such a row failing differently, or passing, fails the test,
//! so the list cannot go stale.
//!
//! GStreamer and VLC verify TLS only against the system's trust store: they run in a
//! mount namespace of their own where the system bundle is the system's plus the
//! cluster's CA (`unshare -m`, root only; nothing outside that process changes). VLC will
//! not run as root, so it runs as `nobody` there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use testkit::browser::Browser;

use crate::cluster::Cluster;

/// H.264 and AAC with the encoders' defaults, as FFmpeg output options.
const H264_AAC: &[&str] = &["-c:v", "libx264", "-c:a", "aac"];

/// The publishers' picture: light (the source rung only).
const ROW_SIZE: &str = "426x240";

/// How long each player plays.
const PLAY: Duration = Duration::from_secs(20);

/// How long a publisher has to get its first segment listed.
const FIRST_SEGMENT: Duration = Duration::from_secs(45);

/// Rows that fail for a reason of ours, with what is known: (client, what, the failure
/// text the row must still show).
const KNOWN_FAILURES: &[(&str, &str, &str)] = &[];

/// What came of one row.
#[derive(Debug, Clone)]
enum Outcome {
    Pass { first_frame: Duration },
    Cannot(String),
    Fail(String),
}

#[derive(Debug, Clone)]
struct Row {
    client: String,
    version: String,
    protocol: &'static str,
    what: String,
    outcome: Outcome,
}

/// The first line a program prints of its version (`args` asks for it).
async fn version(program: &str, args: &[&str], pick: impl Fn(&str) -> Option<String>) -> String {
    let out = Command::new(program).args(args).output().await;
    let text = out
        .map(|o| {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            t
        })
        .unwrap_or_default();
    text.lines()
        .find_map(pick)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The word after `prefix` on a line that starts with it.
fn after(prefix: &'static str) -> impl Fn(&str) -> Option<String> {
    move |line| {
        line.strip_prefix(prefix)
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_owned)
    }
}

/// Debian's package version of `package`.
async fn package_version(package: &str) -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "unknown".to_owned(),
    }
}

/// A `size` 30 fps test pattern with a tone for `seconds`, as ffmpeg input arguments.
fn pattern(size: &str, seconds: u32) -> Vec<String> {
    [
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-re",
        "-f",
        "lavfi",
        "-i",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        format!("testsrc2=size={size}:rate=30"),
        "-f".to_owned(),
        "lavfi".to_owned(),
        "-i".to_owned(),
        "sine=frequency=1000:sample_rate=48000".to_owned(),
        "-t".to_owned(),
        seconds.to_string(),
    ])
    .collect()
}

fn spawn(command: &mut Command) -> anyhow::Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the client")
}

/// Stderr of a finished or killed child, the last lines.
async fn tail(mut child: Child) -> String {
    let _ = child.start_kill();
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await;
    let text = match out {
        Ok(Ok(o)) => String::from_utf8_lossy(&o.stderr).into_owned(),
        _ => String::new(),
    };
    let lines: Vec<&str> = text.lines().rev().take(4).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Runs a publisher: passes once `stream`'s source rung lists a segment, the time from
/// the start being its first-frame time.
async fn publish(cluster: &Cluster, stream: &str, mut command: Command) -> Outcome {
    let started = Instant::now();
    let mut child = match spawn(&mut command) {
        Ok(child) => child,
        Err(e) => return Outcome::Fail(format!("{e:#}")),
    };
    let listed = tokio::select! {
        listed = cluster.wait_media(stream, "src", 1, FIRST_SEGMENT) => listed.map(|_| ()),
        exited = child.wait() => Err(anyhow::anyhow!("the client exited first ({exited:?})")),
    };
    let first = started.elapsed();
    match listed {
        Ok(()) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Outcome::Pass { first_frame: first }
        }
        Err(e) => Outcome::Fail(format!("{e:#}; {}", tail(child).await)),
    }
}

/// Runs a client that cannot do what is asked: it must fail, and say `expected` in its
/// output; `reason` is the row's text.
async fn cannot(mut command: Command, expected: &str, reason: &str) -> Outcome {
    let out = tokio::time::timeout(Duration::from_secs(60), command.output()).await;
    match out {
        Ok(Ok(o)) => {
            let text = String::from_utf8_lossy(&o.stderr);
            if !o.status.success() && text.contains(expected) {
                Outcome::Cannot(reason.to_owned())
            } else {
                Outcome::Fail(format!(
                    "expected it to fail with {expected:?}; it exited {} saying {text:?}: update the row",
                    o.status
                ))
            }
        }
        Ok(Err(e)) => Outcome::Fail(format!("could not start it: {e}")),
        Err(_) => Outcome::Fail("it did not end within 60 s".to_owned()),
    }
}

/// `command` run as `sh -c`, in a mount namespace whose system trust bundle holds the
/// cluster's CA too, as `nobody` when `unprivileged`.
fn trusting_cluster_ca(bundle: &Path, script: &str, unprivileged: bool) -> Command {
    let user = if unprivileged {
        "HOME=/tmp exec setpriv --reuid=65534 --regid=65534 --clear-groups"
    } else {
        "exec"
    };
    let mut command = Command::new("unshare");
    command.args(["-m", "sh", "-c"]).arg(format!(
        "mount --bind '{}' /etc/ssl/certs/ca-certificates.crt && {user} {script}",
        bundle.display()
    ));
    command
}

/// The system's bundle plus the cluster's CA, readable by anyone, in `dir`.
fn bundle(cluster: &Cluster, dir: &Path) -> anyhow::Result<PathBuf> {
    let mut pem = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    pem.extend(std::fs::read(cluster.ca())?);
    let path = dir.join("bundle.pem");
    std::fs::write(&path, pem)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

/// Plays for [`PLAY`]: passes if the player showed a first frame (a line of its output
/// containing `first_frame`, its time the row's) and neither exited with an error nor
/// printed `error` (a line containing it) before the time was up. On a `finite` playlist
/// (a recording) a player that reads faster than real time may reach the end first: then
/// it must end successfully.
async fn play(mut command: Command, (first_frame, error): (&str, &str), finite: bool) -> Outcome {
    let started = Instant::now();
    let mut child = match spawn(&mut command) {
        Ok(child) => child,
        Err(e) => return Outcome::Fail(format!("{e:#}")),
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Outcome::Fail("no output pipes".to_owned());
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for reader in [
        Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut first = None;
    let mut last = Vec::new();
    let deadline = tokio::time::Instant::now() + PLAY;
    let ended = loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break None,
            line = rx.recv() => match line {
                Some(line) => {
                    if first.is_none() && line.contains(first_frame) {
                        first = Some(started.elapsed());
                    }
                    if line.contains(error) {
                        let _ = child.start_kill();
                        return Outcome::Fail(line);
                    }
                    last.push(line);
                    if last.len() > 4 {
                        last.remove(0);
                    }
                }
                None => break Some(child.wait().await),
            },
        }
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    match (ended, first) {
        // Ran the whole time, or ended by itself within a second of it (a player told to
        // play for the time), with a frame shown.
        (None, Some(first)) => Outcome::Pass { first_frame: first },
        (Some(Ok(status)), Some(first))
            if status.success()
                && (finite || started.elapsed() + Duration::from_secs(1) >= PLAY) =>
        {
            Outcome::Pass { first_frame: first }
        }
        (ended, first) => Outcome::Fail(format!(
            "ended after {:.1} s ({ended:?}), first frame {first:?}: {}",
            started.elapsed().as_secs_f64(),
            last.join(" | ")
        )),
    }
}

/// The clients' versions, read once per run.
struct Versions {
    ffmpeg51: String,
    ffmpeg9: String,
    gstreamer: String,
    mpv: String,
    vlc: String,
    chromium: String,
}

impl Versions {
    async fn read(ffmpeg9: &Path) -> Versions {
        let ffmpeg9 = ffmpeg9.to_string_lossy();
        let (ffmpeg51, ffmpeg9, gstreamer, mpv, vlc, chromium) = tokio::join!(
            version("ffmpeg", &["-version"], after("ffmpeg version ")),
            version(&ffmpeg9, &["-version"], after("ffmpeg version ")),
            version("gst-launch-1.0", &["--version"], after("GStreamer ")),
            version("mpv", &["--version"], after("mpv ")),
            package_version("vlc-bin"),
            version("chromium", &["--version"], after("Chromium ")),
        );
        Versions {
            ffmpeg51,
            ffmpeg9,
            gstreamer,
            mpv,
            vlc,
            chromium,
        }
    }
}

/// `program` publishing the rows' test pattern for 30 s with `codec` (and any other
/// output options) as `format` to `url`.
fn ffmpeg_publisher(program: &Path, codec: &[&str], format: &str, url: &str) -> Command {
    let mut c = Command::new(program);
    c.args(pattern(ROW_SIZE, 30))
        .args(codec)
        .args(["-f", format])
        .arg(url);
    c
}

/// The publishers' rows.
async fn publishers(
    cluster: &Cluster,
    ffmpeg9: &Path,
    versions: &Versions,
) -> anyhow::Result<Vec<Row>> {
    let ffmpegs = [
        (
            "FFmpeg (Debian)",
            PathBuf::from("ffmpeg"),
            &versions.ffmpeg51,
        ),
        (
            "FFmpeg (PyPI imageio-ffmpeg)",
            ffmpeg9.to_path_buf(),
            &versions.ffmpeg9,
        ),
    ];
    let mut rows = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("iop{n}")
    };
    for (client, program, version) in &ffmpegs {
        let debian = program == Path::new("ffmpeg");
        let row = |protocol, what: &str, outcome| Row {
            client: (*client).to_owned(),
            version: (*version).clone(),
            protocol,
            what: what.to_owned(),
            outcome,
        };
        // RTMP, H.264 and AAC with the encoders' defaults.
        let stream = next();
        let key = cluster.add_stream(&stream).await?;
        let c = ffmpeg_publisher(program, H264_AAC, "flv", &cluster.rtmp_url(&key));
        rows.push(row(
            "RTMP",
            "H.264, AAC",
            publish(cluster, &stream, c).await,
        ));
        // Enhanced RTMP: HEVC and AV1.
        for (codec, encoder) in [("HEVC", "libx265"), ("AV1", "libsvtav1")] {
            let stream = next();
            let key = cluster.add_stream(&stream).await?;
            let c = ffmpeg_publisher(
                program,
                &["-c:v", encoder, "-c:a", "aac"],
                "flv",
                &cluster.rtmp_url(&key),
            );
            let what = format!("{codec}, AAC");
            let outcome = if debian {
                cannot(
                    c,
                    "not compatible with flv",
                    "its flv muxer has no Enhanced RTMP (HEVC, AV1; FFmpeg 6.1 and later)",
                )
                .await
            } else {
                publish(cluster, &stream, c).await
            };
            rows.push(row("E-RTMP", &what, outcome));
        }
        // SRT, MPEG-TS.
        let stream = next();
        let key = cluster.add_stream(&stream).await?;
        let c = ffmpeg_publisher(program, H264_AAC, "mpegts", &cluster.srt_url_bare(&key));
        rows.push(row(
            "SRT",
            "H.264, AAC (MPEG-TS)",
            publish(cluster, &stream, c).await,
        ));
        // WHIP.
        let stream = next();
        let key = cluster.add_stream(&stream).await?;
        let mut c = ffmpeg_publisher(
            program,
            &[
                "-c:v",
                "libx264",
                "-bf",
                "0",
                "-c:a",
                "libopus",
                "-ar",
                "48000",
                "-ac",
                "2",
                "-authorization",
                &key,
            ],
            "whip",
            &format!("{}/whip/{stream}", cluster.https),
        );
        c.env("SSL_CERT_FILE", cluster.ca());
        let outcome = if debian {
            // No `whip` muxer, so its options are not known either.
            cannot(
                c,
                "Unrecognized option 'authorization'",
                "no WHIP muxer in this version",
            )
            .await
        } else {
            publish(cluster, &stream, c).await
        };
        rows.push(row("WHIP", "H.264, Opus", outcome));
    }
    rows.extend(srt_with_passphrase(&ffmpegs).await?);
    // GStreamer: rtmp2sink and srtsink, the encoders' defaults.
    let gst_row = |protocol, what: &str, outcome| Row {
        client: "GStreamer gst-launch-1.0".to_owned(),
        version: versions.gstreamer.clone(),
        protocol,
        what: what.to_owned(),
        outcome,
    };
    let source = "videotestsrc is-live=true ! video/x-raw,width=426,height=240,framerate=30/1 \
                  ! x264enc tune=zerolatency";
    let audio = "audiotestsrc is-live=true ! voaacenc ! aacparse ! m.";
    let stream = next();
    let key = cluster.add_stream(&stream).await?;
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "exec gst-launch-1.0 -q {source} ! flvmux name=m streamable=true ! rtmp2sink location='{}' {audio}",
        cluster.rtmp_url(&key)
    ));
    rows.push(gst_row(
        "RTMP (rtmp2sink)",
        "H.264, AAC",
        publish(cluster, &stream, c).await,
    ));
    let stream = next();
    let key = cluster.add_stream(&stream).await?;
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "exec gst-launch-1.0 -q {source} ! mpegtsmux name=m ! srtsink uri='{}' {audio}",
        cluster.srt_url_bare(&key)
    ));
    rows.push(gst_row(
        "SRT (srtsink)",
        "H.264, AAC (MPEG-TS)",
        publish(cluster, &stream, c).await,
    ));
    Ok(rows)
}

/// What each player says at its first frame, and in an error (a line containing it).
const FFMPEG: (&str, &str) = ("frame=", "rror");
const MPV: (&str, &str) = (
    "first video frame after restart shown",
    "[ffmpeg/demuxer] hls: Failed",
);
const GSTREAMER: (&str, &str) = ("Setting pipeline to PLAYING", "ERROR:");
const VLC: (&str, &str) = ("Received first picture", "main input error");

/// Chromium's own `<video>` given the playlist as its `src` (no hls.js), muted, on a page
/// of the cluster's origin: passes once its time runs and keeps running for [`PLAY`]
/// (or, `finite`, until the recording ends) without a media error.
async fn chromium_native(origin: &str, master: &str, finite: bool) -> Outcome {
    let started = Instant::now();
    let played = async {
        let mut browser = Browser::start(640, 480).await?;
        let result = async {
            browser.goto(&format!("{origin}/healthz")).await?;
            browser
                .execute(
                    "const v = document.createElement('video'); v.id = 'native'; \
                     v.muted = true; v.autoplay = true; v.src = arguments[0]; \
                     document.body.replaceChildren(v); v.play().catch(() => {}); return true;",
                    serde_json::json!(master),
                )
                .await?;
            let state = "const v = document.getElementById('native'); \
                         return { t: v.currentTime, ended: v.ended, \
                         error: v.error ? v.error.code + ' ' + v.error.message : null };";
            let mut first = None;
            let deadline = tokio::time::Instant::now() + PLAY + Duration::from_secs(10);
            loop {
                let s = browser.execute(state, serde_json::Value::Null).await?;
                if let Some(error) = s["error"].as_str() {
                    bail!("media error {error} at {}", s["t"]);
                }
                let t = s["t"].as_f64().unwrap_or(0.0);
                if first.is_none() && t > 0.0 {
                    first = Some(started.elapsed());
                }
                if let Some(first_frame) = first {
                    let done = started.elapsed() >= first_frame + PLAY;
                    if done || (finite && s["ended"] == true) {
                        anyhow::ensure!(t > 10.0 || s["ended"] == true, "its time stood at {t}");
                        return Ok(first_frame);
                    }
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "no frame, or it stopped, within the time (at {t} s)"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        .await;
        browser.quit().await?;
        result
    };
    match played.await {
        Ok(first_frame) => Outcome::Pass { first_frame },
        Err(e) => Outcome::Fail(format!("{e:#}")),
    }
}

/// SRT with a passphrase: a cluster of its own started with `--srt-passphrase-file`, each
/// FFmpeg publishing with the passphrase in its URL.
async fn srt_with_passphrase(ffmpegs: &[(&str, PathBuf, &String)]) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    // 10 to 79 bytes; unique to the run.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let passphrase = format!("interop-{}-{nanos}", std::process::id());
    let file = dir.path().join("srt-passphrase");
    std::fs::write(&file, &passphrase)?;
    let file = file.to_string_lossy().into_owned();
    let cluster =
        Cluster::start_with(&["--broadcast", "1", "--srt-passphrase-file", &file]).await?;
    let mut rows = Vec::new();
    for (n, (client, program, version)) in ffmpegs.iter().enumerate() {
        let stream = format!("iopsecret{n}");
        let key = cluster.add_stream(&stream).await?;
        let url = format!("{}&passphrase={passphrase}", cluster.srt_url_bare(&key));
        let c = ffmpeg_publisher(program, H264_AAC, "mpegts", &url);
        rows.push(Row {
            client: (*client).to_owned(),
            version: (*version).clone(),
            protocol: "SRT",
            what: "H.264, AAC (MPEG-TS), with a passphrase".to_owned(),
            outcome: publish(&cluster, &stream, c).await,
        });
    }
    cluster.stop_and_check_logs().await?;
    Ok(rows)
}

/// The players' rows for `what`, all playing `master` (a URL through the load balancer)
/// at once.
async fn players(
    cluster: &Cluster,
    (ffmpeg9, versions): (&Path, &Versions),
    (what, master): (&str, &str),
    finite: bool,
    dir: &Path,
) -> anyhow::Result<Vec<Row>> {
    let bundle = bundle(cluster, dir)?;
    let ca = cluster.ca();
    let ffmpeg_player = |program: &Path| {
        let mut c = Command::new(program);
        // The CA as each build takes it: GnuTLS (Debian's) by `-ca_file`, OpenSSL (the
        // static build) by `SSL_CERT_FILE` for every request the HLS reader makes.
        c.env("SSL_CERT_FILE", &ca)
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-ca_file"])
            .arg(&ca)
            .args(["-tls_verify", "1", "-i", master])
            .args(["-f", "null", "-", "-progress", "pipe:1"]);
        c
    };
    let mut mpv = Command::new("mpv");
    mpv.args(["--no-config", "--vo=null", "--ao=null", "--msg-level=all=v"])
        .arg(format!("--tls-ca-file={}", ca.display()))
        .args(["--tls-verify=yes", master]);
    let gst = trusting_cluster_ca(
        &bundle,
        &format!("gst-launch-1.0 playbin uri='{master}' video-sink=fakesink audio-sink=fakesink"),
        false,
    );
    let vlc = trusting_cluster_ca(
        &bundle,
        &format!("cvlc -I dummy --vout=dummy --aout=dummy -vv '{master}'"),
        true,
    );
    let (o51, o9, ompv, ogst, ovlc, ochromium) = tokio::join!(
        play(ffmpeg_player(Path::new("ffmpeg")), FFMPEG, finite),
        play(ffmpeg_player(ffmpeg9), FFMPEG, finite),
        play(mpv, MPV, finite),
        play(gst, GSTREAMER, finite),
        play(vlc, VLC, finite),
        chromium_native(&cluster.https, master, finite),
    );
    let row = |client: &str, version: &String, outcome| Row {
        client: client.to_owned(),
        version: version.clone(),
        protocol: "HLS",
        what: what.to_owned(),
        outcome,
    };
    Ok(vec![
        row("FFmpeg (Debian) HLS reader", &versions.ffmpeg51, o51),
        row(
            "FFmpeg (PyPI imageio-ffmpeg) HLS reader",
            &versions.ffmpeg9,
            o9,
        ),
        row("mpv", &versions.mpv, ompv),
        row("GStreamer playbin (hlsdemux)", &versions.gstreamer, ogst),
        row("VLC (cvlc)", &versions.vlc, ovlc),
        row(
            "Chromium `<video>` (native HLS)",
            &versions.chromium,
            ochromium,
        ),
    ])
}

/// The table, as `docs/interop.md` has it.
fn table(publishers: &[Row], players: &[Row]) -> String {
    let mut out = String::from(
        "# Interop matrix\n\n\
         Written by the end-to-end test `interop_matrix_of_publishers_and_players` \
         (`sealcast/tests/e2e/interop.rs`) against `sealcast up`, each client with its defaults: \
         only the URL and the key, and the cluster's CA where it verifies TLS. Re-write it with \
         `SEALCAST_WRITE_INTEROP=1 cargo test -p sealcast --test e2e -- interop`. \
         First frame: from the client's start to its first segment listed (publishers) or its \
         first frame shown (players).\n",
    );
    for (title, rows) in [("Publishers", publishers), ("Players", players)] {
        let _ = write!(
            out,
            "\n## {title}\n\n| client | version | protocol | what | result | first frame |\n|---|---|---|---|---|---|\n"
        );
        for r in rows {
            let (result, first) = match &r.outcome {
                Outcome::Pass { first_frame } => (
                    "works".to_owned(),
                    format!("{:.1} s", first_frame.as_secs_f64()),
                ),
                Outcome::Cannot(why) => (format!("cannot: {why}"), "—".to_owned()),
                Outcome::Fail(why) => {
                    let known = KNOWN_FAILURES
                        .iter()
                        .find(|(c, w, _)| *c == r.client && *w == r.what)
                        .map(|(_, _, note)| *note)
                        .unwrap_or("");
                    (
                        format!("FAILS: {known} {}", why.replace('|', "/")),
                        "—".to_owned(),
                    )
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.client, r.version, r.protocol, r.what, result, first
            );
        }
    }
    out.push_str(
        "\n## Tested by other end-to-end tests\n\n\
         | client | what | test |\n|---|---|---|\n\
         | hls.js in Chromium (the player page) | live ladder, LL-HLS | `ladder_from_ffmpeg_720p_is_aligned_identical_and_recorded`, `llhls_plays_in_chromium_for_30_s_without_a_stall` |\n\
         | hls.js in Chromium (the player page) | private stream, token in the URL | `private_stream_refuses_every_bad_token_and_plays_with_its_own` |\n\
         | hls.js in Chromium (the player page) | recording | `api_player_dashboard_and_recording_in_chromium` |\n\
         | Chromium, the `/publish` page (WHIP) | H.264, Opus, either DTLS role | `whip_from_chromium_publish_page` |\n\
         | Chromium (WHIP), left with only the TCP candidate | ICE-TCP (RFC 6544) | `whip_from_chromium_over_ice_tcp_only` |\n",
    );
    out
}

/// Every row passes or says why it cannot; a known failure must still fail as known.
fn verdict(rows: &[Row]) -> anyhow::Result<()> {
    let mut wrong = Vec::new();
    for r in rows {
        let known = KNOWN_FAILURES
            .iter()
            .find(|(c, w, _)| *c == r.client && *w == r.what);
        match (&r.outcome, known) {
            (Outcome::Fail(why), Some((_, _, text))) if why.contains(text) => {}
            (Outcome::Fail(why), _) => wrong.push(format!("{} {} {}: {why}", r.client, r.protocol, r.what)),
            (_, Some(_)) => wrong.push(format!(
                "{} {}: listed as a known failure but did not fail so: remove it from KNOWN_FAILURES",
                r.client, r.what
            )),
            _ => {}
        }
    }
    if !wrong.is_empty() {
        bail!("interop rows failed:\n{}", wrong.join("\n"));
    }
    Ok(())
}

/// Waits until private `stream`'s source rung lists three segments, asked with `token`.
async fn wait_private(cluster: &Cluster, stream: &str, token: &str) -> anyhow::Result<()> {
    let url = format!(
        "{}/live/{stream}/src/index.m3u8?token={token}",
        cluster.https
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = cluster.client().get(&url).send().await?;
        if response.status().is_success() {
            let body = response.bytes().await?;
            let segments = String::from_utf8_lossy(&body)
                .lines()
                .filter(|l| l.starts_with("#EXTINF"))
                .count();
            if segments >= 3 {
                return Ok(());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the private stream {stream} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The master playlist path of `stream`'s recording, once the public list has it.
async fn recording_url(cluster: &Cluster, stream: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list: serde_json::Value = cluster
            .client()
            .get(format!("{}/api/v1/recordings", cluster.https))
            .send()
            .await?
            .json()
            .await?;
        let found = list.as_array().and_then(|a| {
            a.iter()
                .find(|r| r["stream"] == stream)
                .and_then(|r| r["master_url"].as_str())
                .map(str::to_owned)
        });
        if let Some(url) = found {
            return Ok(url);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the recording of {stream} was not listed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The matrix: the publishers one after another, then every player at once on a live
/// ladder, on a private stream with its token, and on a recording.
pub(crate) async fn matrix(cluster: &Cluster) -> anyhow::Result<()> {
    let ffmpeg9 = testkit::ffmpeg::ffmpeg9()?;
    let dir = tempfile::tempdir()?;
    let versions = Versions::read(&ffmpeg9).await;
    let clients = (ffmpeg9.as_path(), &versions);
    let publishers = publishers(cluster, &ffmpeg9, &versions).await?;

    // A 640x360 source gives the ladder `src` and `360p`; a private stream beside it.
    let key = cluster.add_stream("iopladder").await?;
    let _ladder = spawn(
        Command::new("ffmpeg")
            .args(pattern("640x360", 180))
            .args(["-c:v", "libx264", "-g", "60", "-c:a", "aac", "-f", "flv"])
            .arg(cluster.rtmp_url(&key)),
    )
    .context("starting the ladder's publisher")?;
    let key = cluster
        .add_stream_with("iopprivate", &["--private"])
        .await?;
    let _private = spawn(
        Command::new("ffmpeg")
            .args(pattern(ROW_SIZE, 180))
            .args(["-c:v", "libx264", "-g", "60", "-c:a", "aac", "-f", "flv"])
            .arg(cluster.rtmp_url(&key)),
    )
    .context("starting the private stream's publisher")?;
    cluster
        .wait_media("iopladder", "360p", 3, Duration::from_secs(60))
        .await
        .context("the ladder for the players")?;
    let token = crate::private::mint(cluster, "iopprivate", &[]).await?;
    wait_private(cluster, "iopprivate", &token).await?;
    let https = &cluster.https;
    let mut players_rows = Vec::new();
    for target in [
        ("live ladder", format!("{https}/live/iopladder/master.m3u8")),
        (
            "private stream, token in the URL",
            format!("{https}/live/iopprivate/master.m3u8?token={token}"),
        ),
    ] {
        let rows = players(cluster, clients, (target.0, &target.1), false, dir.path()).await?;
        players_rows.extend(rows);
    }
    // The ladder ends; its recording, once listed, is the third target.
    drop(_ladder);
    cluster.wait_ended("iopladder").await?;
    let recording = recording_url(cluster, "iopladder").await?;
    players_rows.extend(
        players(
            cluster,
            clients,
            ("recording", &format!("{https}{recording}")),
            true,
            dir.path(),
        )
        .await?,
    );
    let players = players_rows;

    let text = table(&publishers, &players);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&artifacts)?;
    std::fs::write(artifacts.join("interop.md"), &text)?;
    if std::env::var_os("SEALCAST_WRITE_INTEROP").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/interop.md");
        std::fs::write(docs, &text)?;
    }
    let all: Vec<Row> = publishers.into_iter().chain(players).collect();
    verdict(&all).map_err(|e| e.context(text))
}
