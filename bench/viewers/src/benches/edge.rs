//! `sealcast-bench run edge`: bench/edge.sh, one broadcast node against nginx serving the
//! same live window.
//!
//! `sealcast up --broadcast 1` (a 1-worker tokio runtime) gets a short `sealcast source`
//! publish (720p30, 16 s: a window of 6 segments of 2 s, and two more) until the node holds
//! a full window; the publisher then stops, so the window stays fixed (the node keeps an
//! ended stream's playlists, with `#EXT-X-ENDLIST`). The master and media playlists and
//! every listed segment are fetched from the node into a tmpfs directory that nginx
//! (`worker_processes 1`, `sendfile on`, `access_log off`: `bench/peers/nginx/edge.conf`)
//! serves under the same paths; both must serve the same bytes. Each server is pinned to
//! core 0 (the node's every thread once the publish is over), the load generator to core 1.
//!
//! Loads, interleaved ours/nginx (ours first in odd runs, nginx first in even ones), RUNS
//! times each:
//! - wrk -t1 -c64, HTTP/1.1 keep-alive, round-robin over the playlists (master + 4 media);
//! - the same over every segment of the window;
//! - h2load -t1 -c16 -m4 over h2c (HTTP/2 with prior knowledge), playlists and segments,
//!   when the node speaks h2c.
//!
//! Server CPU is utime+stime from `/proc/PID/stat` (nginx: its master and worker) before
//! and after each load. The report ([`crate::reports::edge`]) gives requests/s, requests
//! per server CPU-second, p99 latency and the ratios ours/nginx, with nginx against itself
//! (A/A) as the noise floor.
//!
//! With `--profile DIR` (`EDGE_PROFILE`), each server is also profiled under the wrk loads
//! after the measured ones (perf's cpu-clock samples with call graphs: this machine's
//! virtual CPU has no hardware counters): DIR gets the raw `perf.data` and reports by
//! shared object and by symbol.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::peers::{children, nginx};
use crate::harness::{
    all_cores, cpu_seconds_between, cpu_ticks, get, os_args, pin, program, say, wait_for, Work,
};
use crate::live::free_port;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Interleaved runs of every load.
    #[arg(default_value_t = 3)]
    pub runs: u64,
    /// Seconds per load.
    #[arg(default_value_t = 4)]
    pub seconds: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// Also profile each server under the wrk loads (perf) into this directory.
    #[arg(long, env = "EDGE_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The raw results (default bench/out/edge.json).
    #[arg(long, env = "EDGE_RESULTS")]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// What the report is told of the run.
#[derive(Debug)]
pub struct Measured {
    /// The loads, one JSON object a line.
    pub results: PathBuf,
    /// The segments of the window.
    pub segments: u64,
    /// Their average size, in bytes.
    pub segment_bytes: u64,
    /// Whether the node spoke h2c (so the h2load loads ran).
    pub h2c: bool,
    /// What `nginx -v` printed.
    pub nginx: String,
}

/// The window the publish fills: segments listed, and their target duration.
const WINDOW: u64 = 6;
/// The segments' target duration, seconds.
const TARGET: u64 = 2;

/// wrk's script: round-robin over the paths of the file `WRK_PATHS`, and at the end one
/// `WRKJSON {…}` line of the load's figures.
const PATHS_LUA: &str = r#"local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local reqs, i = {}, 0
request = function()
  i = i % #paths + 1
  if not reqs[i] then reqs[i] = wrk.format("GET", paths[i]) end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_s":%.6f,"errors":%d,"bytes":%d,"p50_ms":%.4f,"p99_ms":%.4f,"mean_ms":%.4f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    summary.bytes, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
"#;

/// A server under load: its name in the results, its URLs and the pids whose CPU counts.
struct Server {
    name: &'static str,
    /// For wrk (HTTP/1.1).
    h1: String,
    /// For h2load (h2c).
    h2: String,
    pids: Vec<u32>,
}

/// Runs the benchmark; `report` is given what it measured while the run's directory is
/// still there.
pub fn run(
    args: &Args,
    report: impl FnOnce(&Measured) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut work = Work::tmpfs("edge")?;
    let secs = args.seconds;

    // 1. A fixed window on one broadcast node.
    let data = work.path("data");
    std::fs::create_dir_all(&data)?;
    let up = work.start(
        "up",
        &all_cores(),
        &args.bin,
        os_args(&[
            "up".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--broadcast".as_ref(),
            "1".as_ref(),
            "--rtmp-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--srt-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--webrtc-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--broadcast-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--mqtt-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ]),
        &[("TOKIO_WORKER_THREADS", "1")],
    )?;
    if !wait_for(Duration::from_secs(30), || {
        work.out_has_line("up", "broadcast1 ")
    }) {
        bail!("edge: sealcast up did not start{}", work.logs());
    }
    let printed = std::fs::read_to_string(work.path("up.out"))?;
    let field = |prefix: &str, index: usize| {
        printed
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(index))
            .map(str::to_owned)
    };
    let node = field("broadcast1 ", 1).context("up printed no node")?;
    let node = node.strip_suffix('/').unwrap_or(&node).to_owned();
    let rtmp = field("obs-server ", 1).context("up printed no RTMP URL")?;
    let key = field("stream-key main ", 2).context("up printed no stream key")?;
    let duration = (WINDOW + 2) * TARGET;
    say(&format!(
        "edge: publishing {duration}s of 720p30 to fill the window"
    ));
    let source_url = format!("{rtmp}/{key}");
    let duration_arg = duration.to_string();
    let source = work.start(
        "source",
        &all_cores(),
        &args.bin,
        [
            "source",
            "--size",
            "1280x720",
            "--fps",
            "30",
            "--duration",
            &duration_arg,
        ],
        &[("SEALCAST_SOURCE_URL", &source_url)],
    )?;
    ensure!(
        work.wait(source)?,
        "edge: sealcast source failed{}",
        work.logs()
    );
    let ended = format!("{node}/live/main/720p/index.m3u8");
    wait_for(Duration::from_secs(20), || {
        get(&ended, None, 120).is_some_and(|b| contains(&b, "EXT-X-ENDLIST"))
    });
    // The script's half second after the end was listed, kept as it was.
    std::thread::sleep(Duration::from_millis(500));

    let www = work.path("www");
    let (mut playlists, mut segments) = (Vec::new(), Vec::new());
    let mut segment_bytes = 0u64;
    let fetch = |path: &str| -> anyhow::Result<Vec<u8>> {
        let body = get(&format!("{node}{path}"), None, 120)
            .with_context(|| format!("edge: the node did not serve {path}"))?;
        let file = www.join(path.trim_start_matches('/'));
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&file, &body)?;
        Ok(body)
    };
    let master_path = "/live/main/master.m3u8";
    let master = fetch(master_path)?;
    playlists.push(master_path.to_owned());
    for rung in listed(&master) {
        let rung = rung.replace("/index.m3u8", "");
        let playlist_path = format!("/live/main/{rung}/index.m3u8");
        let playlist = fetch(&playlist_path)?;
        playlists.push(playlist_path);
        for segment in listed(&playlist) {
            let path = format!("/live/main/{rung}/{segment}");
            segment_bytes += fetch(&path)?.len() as u64;
            segments.push(path);
        }
    }
    let kept = std::fs::read(www.join("live/main/720p/index.m3u8")).unwrap_or_default();
    if !contains(&kept, "EXT-X-ENDLIST") {
        say("edge: warning: the stream had not ended; the window may move");
    }
    readable(&www)?;
    let write_list = |name: &str, paths: &[String]| -> anyhow::Result<PathBuf> {
        let file = work.path(name);
        std::fs::write(
            &file,
            paths.iter().map(|p| format!("{p}\n")).collect::<String>(),
        )?;
        Ok(file)
    };
    let lists = [
        ("playlists", write_list("playlists", &playlists)?),
        ("segments", write_list("segments", &segments)?),
    ];
    let nseg = segments.len() as u64;
    say(&format!(
        "edge: window of {} playlists and {nseg} segments ({} bytes on average)",
        playlists.len(),
        segment_bytes.checked_div(nseg).unwrap_or(0)
    ));
    ensure!(nseg >= 4, "edge: the node holds no window");

    // 2. nginx on the same files.
    let (p1, p2) = (free_port()?.to_string(), free_port()?.to_string());
    let www_text = www.display().to_string();
    let master_pid = nginx(
        &mut work,
        "nginx",
        "0",
        "nginx/edge.conf",
        "nginx",
        &[("PORT", &p1), ("H2_PORT", &p2), ("ROOT", &www_text)],
    )?;
    let nginx_h1 = format!("http://127.0.0.1:{p1}");
    // Up to 5 s, as the script waited (it went on either way; the checks below tell).
    let probe = format!("{nginx_h1}{master_path}");
    wait_for(Duration::from_secs(5), || get(&probe, None, 120).is_some());
    let mut nginx_pids = vec![master_pid];
    nginx_pids.extend(children(master_pid)?);

    // The node: all of `up`'s threads on core 0 now that the publish is over.
    pin("0", &[up])?;

    // Same bytes from both?
    let probe = segments.get(2).context("edge: no third segment")?;
    let same = |path: &str| {
        let ours = get(&format!("{node}{path}"), None, 120);
        ours.is_some() && ours == get(&format!("{nginx_h1}{path}"), None, 120)
    };
    ensure!(
        same(probe),
        "edge: nginx and the node serve different bytes for {probe}"
    );
    ensure!(
        same("/live/main/720p/index.m3u8"),
        "edge: nginx and the node serve different playlists"
    );

    // h2c with prior knowledge on the node (axum with the http2 feature)?
    let h2c = http_version(&format!("{node}{master_path}"))? == "2";
    say(&format!(
        "edge: node speaks h2c with prior knowledge: {}",
        if h2c { "yes" } else { "no" }
    ));
    let lua = work.path("paths.lua");
    std::fs::write(&lua, PATHS_LUA)?;

    let ours = Server {
        name: "sealcast",
        h1: node.clone(),
        h2: node.clone(),
        pids: vec![up],
    };
    let theirs = Server {
        name: "nginx",
        h1: nginx_h1.clone(),
        h2: format!("http://127.0.0.1:{p2}"),
        pids: nginx_pids,
    };
    let mut tools = vec!["wrk"];
    if h2c {
        tools.push("h2load");
    }
    let mut results = String::new();
    for i in 1..=args.runs {
        for tool in &tools {
            for (kind, list) in &lists {
                say(&format!("edge: run {i}/{} {tool} {kind}", args.runs));
                let order = if i % 2 == 1 {
                    [&ours, &theirs]
                } else {
                    [&theirs, &ours]
                };
                for server in order {
                    let line = measure(&mut work, server, kind, tool, list, &lua, secs)?;
                    results.push_str(&line);
                    results.push('\n');
                }
            }
        }
    }
    let results_file = work.path("results.jsonl");
    std::fs::write(&results_file, &results)?;

    // Optional: where each server's CPU goes.
    if let Some(dir) = args.profile.as_ref().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
        for (kind, list) in &lists {
            for server in [&ours, &theirs] {
                profile(&mut work, server, kind, list, &lua, secs, dir)?;
            }
        }
        say(&format!(
            "edge: profiles in {} (*.dso.txt, *.sym.txt)",
            dir.display()
        ));
    }

    // 3. Report.
    report(&Measured {
        results: results_file,
        segments: nseg,
        segment_bytes: segment_bytes.checked_div(nseg).unwrap_or(0),
        h2c,
        nginx: nginx_version()?,
    })
}

/// One load on one server: the server's CPU around it and the load's figures, as the
/// JSON line of the results.
fn measure(
    work: &mut Work,
    server: &Server,
    kind: &str,
    tool: &str,
    list: &Path,
    lua: &Path,
    secs: u64,
) -> anyhow::Result<String> {
    let before = cpu_ticks(&server.pids)?;
    let load = if tool == "wrk" {
        let pid = wrk(work, "wrk", &server.h1, list, lua, secs)?;
        work.wait(pid)?;
        let out = std::fs::read_to_string(work.path("wrk.out"))?;
        out.lines()
            .find_map(|l| l.strip_prefix("WRKJSON "))
            .map(str::to_owned)
            .with_context(|| format!("edge: wrk printed no figures{}", work.logs()))?
    } else {
        let uris: String = std::fs::read_to_string(list)?
            .lines()
            .map(|p| format!("{}{p}\n", server.h2))
            .collect();
        std::fs::write(work.path("uris"), uris)?;
        let log = work.path("h2.log");
        let _ = std::fs::remove_file(&log);
        let secs_arg = secs.to_string();
        let log_arg = format!("--log-file={}", log.display());
        let uris = work.path("uris");
        let pid = work.start(
            "h2",
            "1",
            &program("h2load"),
            os_args(&[
                "-t1".as_ref(),
                "-c16".as_ref(),
                "-m4".as_ref(),
                "-D".as_ref(),
                secs_arg.as_ref(),
                "-i".as_ref(),
                uris.as_os_str(),
                log_arg.as_ref(),
            ]),
            &[],
        )?;
        work.wait(pid)?;
        let out = std::fs::read_to_string(work.path("h2.out"))?;
        let log = crate::reports::h2load::read_log(&log)?;
        serde_json::to_string(&crate::reports::edge::h2load(&out, log.as_deref()))?
    };
    let after = cpu_ticks(&server.pids)?;
    Ok(format!(
        "{{\"server\":\"{}\",\"kind\":\"{kind}\",\"tool\":\"{tool}\",\"cpu_s\":{},\"load\":{load}}}",
        server.name,
        cpu_seconds_between(before, after)?
    ))
}

/// wrk -t1 -c64 on core 1 for `secs` over the paths of `list` against `base`, its output
/// in `NAME.out`; its pid.
fn wrk(
    work: &mut Work,
    name: &str,
    base: &str,
    list: &Path,
    lua: &Path,
    secs: u64,
) -> anyhow::Result<u32> {
    let duration = format!("{secs}s");
    let list = list.display().to_string();
    work.start(
        name,
        "1",
        &program("wrk"),
        os_args(&[
            "-t1".as_ref(),
            "-c64".as_ref(),
            format!("-d{duration}").as_ref(),
            "--timeout".as_ref(),
            "5s".as_ref(),
            "-s".as_ref(),
            lua.as_os_str(),
            base.as_ref(),
        ]),
        &[("WRK_PATHS", &list)],
    )
}

/// One server under a wrk load of `secs + 1` seconds, sampled by perf for `secs`: the raw
/// data and its reports by shared object (15 lines) and by symbol (60) in `dir`. perf's
/// failures leave the reports short or empty, as the script let them.
fn profile(
    work: &mut Work,
    server: &Server,
    kind: &str,
    list: &Path,
    lua: &Path,
    secs: u64,
    dir: &Path,
) -> anyhow::Result<()> {
    say(&format!("edge: profiling {} under wrk {kind}", server.name));
    let stem = format!("{}.{kind}", server.name);
    let data = dir.join(format!("{stem}.data"));
    let wrk_pid = wrk(work, "profile-wrk", &server.h1, list, lua, secs + 1)?;
    let pids: Vec<String> = server.pids.iter().map(u32::to_string).collect();
    let _ = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", "1999", "-g", "-o"])
        .arg(&data)
        .args(["-p", &pids.join(","), "--", "sleep", &secs.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    work.wait(wrk_pid)?;
    std::fs::copy(
        work.path("profile-wrk.out"),
        dir.join(format!("{stem}.wrk")),
    )?;
    for (sort, lines, suffix) in [("dso", 15, "dso.txt"), ("dso,sym", 60, "sym.txt")] {
        let out = Command::new("perf")
            .arg("report")
            .arg("-i")
            .arg(&data)
            .args([
                "--no-children",
                "--sort",
                sort,
                "--stdio",
                "-q",
                "-g",
                "none",
            ])
            .stderr(Stdio::null())
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&out);
        let mut file = std::fs::File::create(dir.join(format!("{stem}.{suffix}")))?;
        for line in text.lines().filter(|l| !l.is_empty()).take(lines) {
            writeln!(file, "{line}")?;
        }
    }
    Ok(())
}

/// The lines of a playlist that are not tags (`grep -v '^#'`, words as bash split them).
fn listed(playlist: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(playlist)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect()
}

/// Whether `body` holds `text`.
fn contains(body: &[u8], text: &str) -> bool {
    String::from_utf8_lossy(body).contains(text)
}

/// `chmod -R a+rX`: every file readable by all, every directory also searchable.
fn readable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    let mode = meta.permissions().mode();
    let add = if meta.is_dir() || mode & 0o111 != 0 {
        0o555
    } else {
        0o444
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | add))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            readable(&entry?.path())?;
        }
    }
    Ok(())
}

/// The HTTP version `url` answers with to curl speaking HTTP/2 with prior knowledge
/// (`%{http_version}`: `2` when it does).
fn http_version(url: &str) -> anyhow::Result<String> {
    let out = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-o", "/dev/null"])
        .args(["-w", "%{http_version}", url])
        .stderr(Stdio::null())
        .output()
        .context("running curl")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `nginx -v` printed (on stderr), without its line end.
fn nginx_version() -> anyhow::Result<String> {
    let out = Command::new(program("nginx"))
        .arg("-v")
        .output()
        .context("running nginx -v")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text.trim_end_matches('\n').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_lines_are_those_not_tags() {
        let master =
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n\n360p/index.m3u8\n";
        assert_eq!(listed(master), ["720p/index.m3u8", "360p/index.m3u8"]);
    }
}
