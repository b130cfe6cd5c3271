//! The peers' servers a benchmark sets beside ours, from their configuration files in
//! `bench/peers/` (bench/lib.sh's `bench_ll_nginx`, `bench_nginx_conf`, `bench_haproxy_conf`,
//! `bench_cipher`; bench/capacity.sh's mirror; bench/llhls-cdn.sh's Varnish).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use super::backends::haproxy_pem;
use super::cluster::Started;
use super::{get, os_args, peer_file, program, render, wait_for, Work};
use crate::live::free_port;

/// nginx on a mirror of a node's rendition.
#[derive(Debug, Clone)]
pub struct MirroredNginx {
    /// Its base URL.
    pub url: String,
    /// Its master's and worker's pids: the server's CPU.
    pub pids: Vec<u32>,
    /// The mirror's pid (`sealcast-bench mirror`).
    pub mirror: u32,
    /// A part listed by both (on a plain-HLS mirror, a segment), served with the same
    /// bytes by both.
    pub same_part: String,
}

/// nginx (one worker, sendfile, no access log: `bench/peers/nginx/files.conf`, on core 0)
/// serving a mirror on tmpfs (`WORK/www`) of `node`'s LL-HLS files of `stream`'s 360p rung,
/// which `sealcast-bench mirror` (this program, on core 1) keeps up to date the way a
/// low-latency player follows a node; checks that both serve the same master playlist,
/// init segment and a listed part.
pub fn nginx_on_mirror(
    work: &mut Work,
    node: &str,
    stream: &str,
    nofile: u64,
) -> anyhow::Result<MirroredNginx> {
    let playlist = format!("/live/{stream}/360p/index.m3u8");
    let master = format!("/live/{stream}/master.m3u8");
    let (url, pids, mirror) =
        mirror_served(work, node, &master, &playlist, None, &playlist, nofile)?;
    same_bytes(node, &url, &master)?;
    same_bytes(node, &url, &format!("/live/{stream}/360p/init.mp4"))?;
    let listed = get(&format!("{url}{playlist}"), None, 5).context("nginx's playlist")?;
    let same_part = crate::harness::last_part_uri(&String::from_utf8_lossy(&listed))
        .map(str::to_owned)
        .context("nginx's playlist lists no part")?;
    same_bytes(node, &url, &format!("/live/{stream}/360p/{same_part}"))?;
    Ok(MirroredNginx {
        url,
        pids,
        mirror,
        same_part,
    })
}

/// [`nginx_on_mirror`] for plain HLS (bench/capacity.sh's): the mirror polls the media
/// playlist every `interval` seconds (`sealcast-bench mirror --interval`) and, when it
/// changed, fetches the new segments and the init segment first, then the playlist; nginx
/// is ready once it serves the master playlist. Checks that both serve the same master
/// playlist, init segment (the playlist's first `URI="…"`, when it has one) and the
/// next-to-last segment nginx lists, returned as `same_part`.
pub fn nginx_on_hls_mirror(
    work: &mut Work,
    node: &str,
    stream: &str,
    nofile: u64,
    interval: &str,
) -> anyhow::Result<MirroredNginx> {
    let playlist = format!("/live/{stream}/360p/index.m3u8");
    let master = format!("/live/{stream}/master.m3u8");
    let (url, pids, mirror) = mirror_served(
        work,
        node,
        &master,
        &playlist,
        Some(interval),
        &master,
        nofile,
    )?;
    same_bytes(node, &url, &master)?;
    let listed = get(&format!("{url}{playlist}"), None, 5).context("nginx's playlist")?;
    let listed = String::from_utf8_lossy(&listed);
    let segment = next_to_last_segment(&listed)
        .map(str::to_owned)
        .context("nginx's playlist lists no segment")?;
    if let Some(init) = first_uri(&listed) {
        same_bytes(node, &url, &format!("/live/{stream}/360p/{init}"))?;
    }
    same_bytes(node, &url, &format!("/live/{stream}/360p/{segment}"))?;
    Ok(MirroredNginx {
        url,
        pids,
        mirror,
        same_part: segment,
    })
}

/// The mirror of `node`'s `master` and `playlist` into `WORK/www` (LL-HLS, or plain HLS
/// polled every `interval` seconds), once it prints `ready`, and nginx serving it, once
/// `probe` answers: nginx's URL, its master's and workers' pids, the mirror's pid.
fn mirror_served(
    work: &mut Work,
    node: &str,
    master: &str,
    playlist: &str,
    interval: Option<&str>,
    probe: &str,
    nofile: u64,
) -> anyhow::Result<(String, Vec<u32>, u32)> {
    let www = work.path("www");
    std::fs::create_dir_all(&www)?;
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&www, mode)?;
    let me = std::env::current_exe().context("this program's path")?;
    let mut args = os_args(&[
        "mirror".as_ref(),
        node.as_ref(),
        master.as_ref(),
        playlist.as_ref(),
        www.as_os_str(),
    ]);
    if let Some(interval) = interval {
        args.extend([OsStr::new("--interval"), OsStr::new(interval)]);
    }
    let mirror = work.start("mirror", "1", &me, args, &[])?;
    if !wait_for(Duration::from_secs(20), || {
        work.out_has_line("mirror", "ready")
    }) {
        work.alive(mirror, "the mirror")?;
        bail!("the mirror did not start{}", work.logs());
    }
    let port = free_port()?.to_string();
    let master_pid = nginx(
        work,
        "nginx",
        "0",
        "nginx/files.conf",
        "nginx",
        &[
            ("PORT", &port),
            ("ROOT", &www.display().to_string()),
            ("NOFILE", &nofile.to_string()),
            ("CONNECTIONS", &nofile.saturating_sub(100).to_string()),
        ],
    )?;
    let url = format!("http://127.0.0.1:{port}");
    if !wait_for(Duration::from_secs(10), || {
        get(&format!("{url}{probe}"), None, 2).is_some()
    }) {
        work.alive(master_pid, "nginx")?;
        bail!("nginx did not answer{}", work.logs());
    }
    let mut pids = vec![master_pid];
    pids.extend(children(master_pid)?);
    Ok((url, pids, mirror))
}

/// Fails unless `node` and nginx (`nginx`) serve the same bytes for `path`.
fn same_bytes(node: &str, nginx: &str, path: &str) -> anyhow::Result<()> {
    let ours = get(&format!("{node}{path}"), None, 5);
    let theirs = get(&format!("{nginx}{path}"), None, 5);
    ensure!(
        ours.is_some() && ours == theirs,
        "nginx and the node serve different bytes for {path}"
    );
    Ok(())
}

/// The first `URI="…"` of a media playlist (`grep -o 'URI="[^"]*"' | head -1`): its init
/// segment, when it has one.
pub fn first_uri(playlist: &str) -> Option<&str> {
    playlist.lines().find_map(|line| {
        let (_, rest) = line.split_once("URI=\"")?;
        rest.split_once('"').map(|(uri, _)| uri)
    })
}

/// The next-to-last segment a media playlist lists (its lines that are not tags, `grep -v
/// '^#' | tail -2 | head -1`; the only one when it lists one): complete on both servers.
pub fn next_to_last_segment(playlist: &str) -> Option<&str> {
    let segments: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
    segments
        .len()
        .checked_sub(2)
        .or_else(|| segments.len().checked_sub(1))
        .and_then(|i| segments.get(i).copied())
        .filter(|s| !s.is_empty())
}

/// nginx from the template `bench/peers/TEMPLATE` rendered with `values` and `DIR` (its
/// directory, `WORK/DIR_NAME`: the configuration, pid, error log and temporary files),
/// started as `name` on `core` (`nginx -p DIR -c DIR/nginx.conf -e DIR/error.log`); its
/// master's pid, at once (the caller waits for what it needs to answer).
pub fn nginx(
    work: &mut Work,
    name: &str,
    core: &str,
    template: &str,
    dir_name: &str,
    values: &[(&str, &str)],
) -> anyhow::Result<u32> {
    let dir = work.path(dir_name);
    std::fs::create_dir_all(dir.join("tmp"))?;
    let conf = dir.join("nginx.conf");
    let dir_text = dir.display().to_string();
    let mut all = vec![("DIR", dir_text.as_str())];
    all.extend_from_slice(values);
    render(&peer_file(template), &conf, &all)?;
    let error_log = dir.join("error.log");
    work.start(
        name,
        core,
        &program("nginx"),
        os_args(&[
            "-p".as_ref(),
            dir.as_os_str(),
            "-c".as_ref(),
            conf.as_os_str(),
            "-e".as_ref(),
            error_log.as_os_str(),
        ]),
        &[],
    )
}

/// The pids of `parent`'s children (`pgrep -P`).
pub fn children(parent: u32) -> anyhow::Result<Vec<u32>> {
    let out = Command::new("pgrep")
        .args(["-P", &parent.to_string()])
        .output()
        .context("running pgrep")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Varnish's configuration directory for a cache in front of a load balancer's origin
/// listener on `origin_port`: `WORK/vcl/origin.vcl`, `bench/peers/varnish/origin.vcl`
/// rendered (deploy/varnish/sealcast.vcl includes it from `vcl_path`).
pub fn varnish_vcl(work: &Work, origin_port: u16) -> anyhow::Result<PathBuf> {
    let dir = work.path("vcl");
    std::fs::create_dir_all(&dir)?;
    render(
        &peer_file("varnish/origin.vcl"),
        &dir.join("origin.vcl"),
        &[("ORIGIN_PORT", &origin_port.to_string())],
    )?;
    Ok(dir)
}

/// Varnish (`varnishd`, logs `varnish.out` and `varnish.err`) on core 0 on a free port of
/// 127.0.0.1, with deploy/varnish/sealcast.vcl and the `origin.vcl` of `vcl_dir`
/// ([`varnish_vcl`]); as deploy/docker/varnish runs it (HTTP/2 on, 256 MB of objects),
/// with room for many viewers: two thread pools of 200 to `threads / 2` worker threads
/// (an HTTP/2 session holds one), long idle connections (60 s), a deep backlog (4096).
/// Its shared memory log and compiled VCL in `WORK/varnish` (`varnishstat -n`), no jail
/// (a benchmark's own process). Not waited for: the caller waits for what it needs.
/// bench/llhls-cdn.sh's `varnish_start`.
pub fn varnish(work: &mut Work, vcl_dir: &Path, threads: u64) -> anyhow::Result<Started> {
    let deploy = super::repo_path("deploy/varnish")?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let vcl = deploy.join("sealcast.vcl");
    let vcl_path = format!("vcl_path={}:{}", vcl_dir.display(), deploy.display());
    let thread_pool_max = format!("thread_pool_max={}", threads / 2);
    let dir = work.path("varnish");
    let pid = work.start(
        "varnish",
        "0",
        &program("varnishd"),
        os_args(&[
            "-F".as_ref(),
            "-j".as_ref(),
            "none".as_ref(),
            "-n".as_ref(),
            dir.as_os_str(),
            "-a".as_ref(),
            listen.as_ref(),
            "-f".as_ref(),
            vcl.as_os_str(),
            "-p".as_ref(),
            vcl_path.as_ref(),
            "-s".as_ref(),
            "malloc,256m".as_ref(),
            "-p".as_ref(),
            "feature=+http2".as_ref(),
            "-p".as_ref(),
            "timeout_idle=60".as_ref(),
            "-p".as_ref(),
            "listen_depth=4096".as_ref(),
            "-p".as_ref(),
            "thread_pools=2".as_ref(),
            "-p".as_ref(),
            "thread_pool_min=200".as_ref(),
            "-p".as_ref(),
            thread_pool_max.as_ref(),
        ]),
        &[],
    )?;
    Ok(Started {
        name: "varnish".into(),
        pid,
        url: format!("http://{listen}"),
    })
}

/// What `varnishd -V` prints first (on its standard error), as `varnishd -V 2>&1 | head -1`.
pub fn varnish_version() -> String {
    Command::new(program("varnishd"))
        .arg("-V")
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text.lines().next().unwrap_or_default().to_owned()
        })
        .unwrap_or_default()
}

/// HAProxy as the benchmarks run it against ours (`bench/peers/haproxy/tls-front.cfg`):
/// one thread, TLS 1.3 with only `suite`, h2 and http/1.1 by ALPN, keep-alive with
/// connection reuse to the backend, the sticky cookie inserted, one server (`server`,
/// HOST:PORT), on core 0; `certs` holds `server.pem` and `server.key`. Checked with
/// `haproxy -c` first; returned once `path` answers 200 over HTTPS trusting `ca`.
#[allow(clippy::too_many_arguments)] // the template's placeholders, each named
pub fn haproxy_tls_front(
    work: &mut Work,
    certs: &Path,
    ca: &Path,
    suite: &str,
    maxconn: u64,
    client_timeout: &str,
    server: &str,
    path: &str,
) -> anyhow::Result<super::cluster::Started> {
    let pem = haproxy_pem(work, certs)?;
    let port = free_port()?.to_string();
    let values = [
        ("PORT", port.as_str()),
        ("PEM", &pem.display().to_string()),
        ("SUITE", suite),
        ("MAXCONN", &maxconn.to_string()),
        ("CLIENT_TIMEOUT", client_timeout),
        ("SERVER", server),
    ];
    let started = HaproxyStart {
        template: "haproxy/tls-front.cfg",
        cores: "0",
        check_first: true,
        within: Duration::from_secs(20),
    };
    started.run(work, &values, &port, path, ca)
}

/// HAProxy on `WORK/haproxy.cfg`, made from `bench/peers/TEMPLATE` and `values` (checked
/// with `haproxy -c` first when `check_first`), started as `haproxy` on `cores` (`-db
/// -f`); its pid, at once (the caller waits for what it needs to answer).
pub fn haproxy(
    work: &mut Work,
    cores: &str,
    template: &str,
    values: &[(&str, &str)],
    check_first: bool,
) -> anyhow::Result<u32> {
    let conf = work.path("haproxy.cfg");
    render(&peer_file(template), &conf, values)?;
    let haproxy = program("haproxy");
    if check_first {
        let check = Command::new(&haproxy)
            .args(["-c", "-q", "-f"])
            .arg(&conf)
            .status()
            .context("running haproxy -c")?;
        ensure!(check.success(), "HAProxy refuses {}", conf.display());
    }
    work.start(
        "haproxy",
        cores,
        &haproxy,
        os_args(&["-db".as_ref(), "-f".as_ref(), conf.as_os_str()]),
        &[],
    )
}

/// How [`haproxy_tls_front`] and [`haproxy_idle`] start HAProxy from their templates.
struct HaproxyStart {
    /// `bench/peers/TEMPLATE`.
    template: &'static str,
    /// `taskset -c` (or [`super::UNPINNED`]).
    cores: &'static str,
    /// Run `haproxy -c` on the configuration first.
    check_first: bool,
    /// How long HAProxy has to answer 200.
    within: Duration,
}

impl HaproxyStart {
    /// `WORK/haproxy.cfg` from the template and `values`, HAProxy started on it as
    /// `haproxy` (`-db -f`); returned once `path` answers 200 on `port` over HTTPS trusting
    /// `ca`.
    fn run(
        &self,
        work: &mut Work,
        values: &[(&str, &str)],
        port: &str,
        path: &str,
        ca: &Path,
    ) -> anyhow::Result<Started> {
        let pid = haproxy(work, self.cores, self.template, values, self.check_first)?;
        let url = format!("https://localhost:{port}");
        let probe = format!("{url}{path}");
        if !wait_for(self.within, || get(&probe, Some(ca), 3).is_some()) {
            work.alive(pid, "HAProxy")?;
            bail!(
                "HAProxy did not answer 200 in {} s{}",
                self.within.as_secs(),
                work.logs()
            );
        }
        Ok(Started {
            name: "haproxy".into(),
            pid,
            url,
        })
    }
}

/// nginx as bench/memory.sh runs it against ours for idle connections
/// (`bench/peers/nginx/memory.conf`: one worker, no access log, long keep-alive), serving
/// `root` on a free port of 127.0.0.1, not pinned, room for `connections` connections
/// (512 more; 1024 more open files); its configuration, pid, error log and temporary files
/// in `WORK/nginx`. Returned once `path` answers (at most 5 s).
pub fn nginx_idle(
    work: &mut Work,
    root: &Path,
    connections: u64,
    path: &str,
) -> anyhow::Result<super::cluster::Started> {
    let port = free_port()?.to_string();
    let pid = nginx(
        work,
        "nginx",
        super::UNPINNED,
        "nginx/memory.conf",
        "nginx",
        &[
            ("PORT", &port),
            ("ROOT", &root.display().to_string()),
            ("NOFILE", &(connections + 1024).to_string()),
            ("CONNECTIONS", &(connections + 512).to_string()),
        ],
    )?;
    let url = format!("http://127.0.0.1:{port}");
    let probe = format!("{url}{path}");
    if !wait_for(Duration::from_secs(5), || get(&probe, None, 2).is_some()) {
        work.alive(pid, "nginx")?;
        bail!("nginx did not answer in 5 s{}", work.logs());
    }
    Ok(super::cluster::Started {
        name: "nginx".into(),
        pid,
        url,
    })
}

/// HAProxy as bench/memory.sh runs it against ours for idle connections
/// (`bench/peers/haproxy/memory.cfg`: one thread, TLS 1.3 with only `suite`, h2 and
/// http/1.1 by ALPN, long client and keep-alive timeouts, the sticky cookie inserted, one
/// server: `server`, HOST:PORT), on a free port, not pinned, at most `maxconn`
/// connections; `certs` holds `server.pem` and `server.key`. Returned once `path`
/// answers 200 over HTTPS trusting `ca` (at most 5 s).
pub fn haproxy_idle(
    work: &mut Work,
    certs: &Path,
    ca: &Path,
    suite: &str,
    maxconn: u64,
    server: &str,
    path: &str,
) -> anyhow::Result<super::cluster::Started> {
    let pem = haproxy_pem(work, certs)?;
    let port = free_port()?.to_string();
    let values = [
        ("PORT", port.as_str()),
        ("PEM", &pem.display().to_string()),
        ("SUITE", suite),
        ("MAXCONN", &maxconn.to_string()),
        ("SERVER", server),
    ];
    let started = HaproxyStart {
        template: "haproxy/memory.cfg",
        cores: super::UNPINNED,
        check_first: false,
        within: Duration::from_secs(5),
    };
    started.run(work, &values, &port, path, ca)
}

/// "VERSION SUITE ALPN" (`TLSv1.3 TLS_AES_128_GCM_SHA256 h2`) as the server of `url`
/// negotiates with an h2-capable client trusting `ca` (`openssl s_client`).
pub fn cipher(url: &str, ca: &Path) -> anyhow::Result<String> {
    let report = s_client(
        url,
        ca,
        &["-servername", "localhost", "-alpn", "h2,http/1.1"],
    )?;
    Ok(negotiated(&report))
}

/// "VERSION, SUITE" (`TLSv1.3, TLS_AES_128_GCM_SHA256`) as the server of `url` negotiates
/// with a client that offers h2 alone by ALPN and no server name, trusting `ca`: how
/// bench/memory.sh asked its TLS targets, what its report prints. [`cipher`] asks with
/// SNI and h2 or HTTP/1.1 and says which protocol was chosen; this one is kept apart so
/// that neither benchmark's question (nor its section's text) changes.
pub fn cipher_h2(url: &str, ca: &Path) -> anyhow::Result<String> {
    Ok(first_new_line(&s_client(url, ca, &["-alpn", "h2"])?))
}

/// `openssl s_client -connect HOST:PORT` of `url` with `args`, trusting `ca`, its standard
/// input empty: its report (standard output).
fn s_client(url: &str, ca: &Path, args: &[&str]) -> anyhow::Result<String> {
    let hostport = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default();
    let out = Command::new("openssl")
        .args(["s_client", "-connect", hostport])
        .args(args)
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running openssl s_client")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The second and fifth fields of `openssl s_client`'s first `New, …` line, as
/// `awk '/^New, / { print $2, $5 }' | head -1` printed them; empty when there is none.
pub fn first_new_line(report: &str) -> String {
    report
        .lines()
        .find(|line| line.starts_with("New, "))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            format!(
                "{} {}",
                fields.get(1).copied().unwrap_or_default(),
                fields.get(4).copied().unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// "VERSION SUITE ALPN" from `openssl s_client`'s report (its `New, …` and `ALPN
/// protocol:` lines; the fields left empty when absent).
pub fn negotiated(report: &str) -> String {
    let (mut version, mut suite, mut alpn) = ("", "", "");
    for line in report.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("New, ") {
            version = fields.get(1).copied().unwrap_or_default();
            suite = fields.get(4).copied().unwrap_or_default();
        }
        if line.starts_with("ALPN protocol:") {
            alpn = fields.get(2).copied().unwrap_or_default();
        }
    }
    format!("{version} {suite} {alpn}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_negotiated_tls_is_read_as_awk_read_it() {
        let report = "CONNECTED(00000003)\n---\nNew, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256\n\
                      Server public key is 256 bit\nALPN protocol: h2\n";
        assert_eq!(negotiated(report), "TLSv1.3, TLS_AES_128_GCM_SHA256 h2");
        assert_eq!(negotiated("nothing"), "  ");
        assert_eq!(
            first_new_line(&format!("{report}New, TLSv1.2, Cipher is X\n")),
            "TLSv1.3, TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(first_new_line("nothing"), "");
    }

    #[test]
    fn the_init_and_the_segment_are_found_as_grep_found_them() {
        let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                        #EXTINF:2.000,\n7.m4s\n#EXTINF:2.000,\n8.m4s\n#EXTINF:2.000,\n9.m4s\n";
        assert_eq!(first_uri(playlist), Some("init.mp4"));
        assert_eq!(next_to_last_segment(playlist), Some("8.m4s"));
        assert_eq!(
            next_to_last_segment("#EXTM3U\n#EXTINF:2,\n1.m4s\n"),
            Some("1.m4s")
        );
        assert_eq!(next_to_last_segment("#EXTM3U\n"), None);
        assert_eq!(first_uri("#EXTM3U\n#EXTINF:2,\n1.ts\n"), None);
    }
}
