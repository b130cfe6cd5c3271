//! The peers' servers a benchmark sets beside ours, from their configuration files in
//! `bench/peers/` (bench/lib.sh's `bench_ll_nginx`, `bench_haproxy_conf`, `bench_cipher`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

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
    /// A part listed by both, served with the same bytes by both.
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
    let www = work.path("www");
    std::fs::create_dir_all(&www)?;
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&www, mode)?;
    let me = std::env::current_exe().context("this program's path")?;
    let mirror = work.start(
        "mirror",
        "1",
        &me,
        os_args(&[
            "mirror".as_ref(),
            node.as_ref(),
            master.as_ref(),
            playlist.as_ref(),
            www.as_os_str(),
        ]),
        &[],
    )?;
    if !wait_for(Duration::from_secs(20), || {
        work.out_has_line("mirror", "ready")
    }) {
        work.alive(mirror, "the mirror")?;
        bail!("the mirror did not start{}", work.logs());
    }
    let port = free_port()?.to_string();
    let dir = work.path("nginx");
    std::fs::create_dir_all(dir.join("tmp"))?;
    let conf = dir.join("nginx.conf");
    let connections = nofile.saturating_sub(100).to_string();
    render(
        &peer_file("nginx/files.conf"),
        &conf,
        &[
            ("DIR", &dir.display().to_string()),
            ("PORT", &port),
            ("ROOT", &www.display().to_string()),
            ("NOFILE", &nofile.to_string()),
            ("CONNECTIONS", &connections),
        ],
    )?;
    let error_log = dir.join("error.log");
    let master_pid = work.start(
        "nginx",
        "0",
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
    )?;
    let url = format!("http://127.0.0.1:{port}");
    if !wait_for(Duration::from_secs(10), || {
        get(&format!("{url}{playlist}"), None, 2).is_some()
    }) {
        work.alive(master_pid, "nginx")?;
        bail!("nginx did not answer{}", work.logs());
    }
    let mut pids = vec![master_pid];
    pids.extend(children(master_pid)?);
    let same = |path: &str| -> anyhow::Result<()> {
        let ours = get(&format!("{node}{path}"), None, 5);
        let theirs = get(&format!("{url}{path}"), None, 5);
        ensure!(
            ours.is_some() && ours == theirs,
            "nginx and the node serve different bytes for {path}"
        );
        Ok(())
    };
    same(&master)?;
    same(&format!("/live/{stream}/360p/init.mp4"))?;
    let listed = get(&format!("{url}{playlist}"), None, 5).context("nginx's playlist")?;
    let same_part = crate::harness::last_part_uri(&String::from_utf8_lossy(&listed))
        .map(str::to_owned)
        .context("nginx's playlist lists no part")?;
    same(&format!("/live/{stream}/360p/{same_part}"))?;
    Ok(MirroredNginx {
        url,
        pids,
        mirror,
        same_part,
    })
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
    let pem = work.path("haproxy.pem");
    let mut joined = std::fs::read(certs.join("server.pem"))?;
    joined.extend(std::fs::read(certs.join("server.key"))?);
    std::fs::write(&pem, joined)?;
    let port = free_port()?.to_string();
    let conf = work.path("haproxy.cfg");
    render(
        &peer_file("haproxy/tls-front.cfg"),
        &conf,
        &[
            ("PORT", &port),
            ("PEM", &pem.display().to_string()),
            ("SUITE", suite),
            ("MAXCONN", &maxconn.to_string()),
            ("CLIENT_TIMEOUT", client_timeout),
            ("SERVER", server),
        ],
    )?;
    let haproxy = program("haproxy");
    let check = Command::new(&haproxy)
        .args(["-c", "-q", "-f"])
        .arg(&conf)
        .status()
        .context("running haproxy -c")?;
    ensure!(check.success(), "HAProxy refuses {}", conf.display());
    let pid = work.start(
        "haproxy",
        "0",
        &haproxy,
        os_args(&["-db".as_ref(), "-f".as_ref(), conf.as_os_str()]),
        &[],
    )?;
    let url = format!("https://localhost:{port}");
    let probe = format!("{url}{path}");
    if !wait_for(Duration::from_secs(20), || {
        get(&probe, Some(ca), 3).is_some()
    }) {
        work.alive(pid, "HAProxy")?;
        bail!("HAProxy did not answer 200 in 20 s{}", work.logs());
    }
    Ok(super::cluster::Started {
        name: "haproxy".into(),
        pid,
        url,
    })
}

/// "VERSION SUITE ALPN" (`TLSv1.3 TLS_AES_128_GCM_SHA256 h2`) as the server of `url`
/// negotiates with an h2-capable client trusting `ca` (`openssl s_client`).
pub fn cipher(url: &str, ca: &Path) -> anyhow::Result<String> {
    let hostport = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default();
    let out = Command::new("openssl")
        .args(["s_client", "-connect", hostport, "-servername", "localhost"])
        .args(["-alpn", "h2,http/1.1", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running openssl s_client")?;
    Ok(negotiated(&String::from_utf8_lossy(&out.stdout)))
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
    }
}
