//! Static backends for a load balancer under test (bench/lb.sh, bench/lb-profile.sh): the
//! files nginx serves for them, their presences signed with the cluster's edge key and
//! published retained on the run's broker (what a sealcast node publishes of itself), and
//! the curl requests the scripts made of a load balancer over TLS.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context};

use super::get;

/// The playlist both load balancers serve.
pub const PLAYLIST: &str = "/live/bench/src/index.m3u8";
/// The segment.
pub const SEGMENT: &str = "/live/bench/src/1.ts";

/// The backends' files under `www`: a playlist of six 2 s segments and its first segment,
/// 1088 TS packets of 188 bytes (~200 KB), each a 0x47 sync byte and random payload; all
/// readable by nginx's worker (`chmod -R a+rX`).
pub fn backend_files(www: &Path) -> anyhow::Result<()> {
    let dir = www.join(PLAYLIST.trim_start_matches('/'));
    let dir = dir.parent().context("the playlist's directory")?;
    std::fs::create_dir_all(dir)?;
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n",
    );
    for i in 1..=6 {
        playlist.push_str(&format!("#EXTINF:2.000,\n{i}.ts\n"));
    }
    std::fs::write(www.join(PLAYLIST.trim_start_matches('/')), playlist)?;
    let mut segment = Vec::new();
    crate::reports::lb::random_segment(1088, &mut segment)?;
    std::fs::write(www.join(SEGMENT.trim_start_matches('/')), segment)?;
    let mode = |m| std::os::unix::fs::PermissionsExt::from_mode(m);
    let mut path = www.to_path_buf();
    std::fs::set_permissions(&path, mode(0o755))?;
    for part in ["live", "bench", "src"] {
        path.push(part);
        std::fs::set_permissions(&path, mode(0o755))?;
    }
    for file in [PLAYLIST, SEGMENT] {
        std::fs::set_permissions(www.join(file.trim_start_matches('/')), mode(0o644))?;
    }
    Ok(())
}

/// `WORK/haproxy.pem`: the certificate chain `sealcast certs` made in `certs` and its key
/// in one file, as HAProxy takes them.
pub fn haproxy_pem(work: &super::Work, certs: &Path) -> anyhow::Result<std::path::PathBuf> {
    let pem = work.path("haproxy.pem");
    let mut joined = std::fs::read(certs.join("server.pem"))?;
    joined.extend(std::fs::read(certs.join("server.key"))?);
    std::fs::write(&pem, joined)?;
    Ok(pem)
}

/// A presence signed with the edge key of `keys` (`sealcast-presence --keys-dir KEYS NODE
/// URL`), written to `file`.
pub fn sign_presence(
    presence_bin: &Path,
    keys: &Path,
    node: &str,
    url: &str,
    file: &Path,
) -> anyhow::Result<()> {
    let out = Command::new(presence_bin)
        .arg("--keys-dir")
        .arg(keys)
        .args([node, url])
        .stderr(Stdio::inherit())
        .output()
        .context("running sealcast-presence")?;
    ensure!(
        out.status.success(),
        "sealcast-presence could not sign the presence of {node}"
    );
    std::fs::write(file, out.stdout)?;
    Ok(())
}

/// `timeout SECS mosquitto_pub -h 127.0.0.1 -p PORT -r -q 1 -t TOPIC -f FILE` (retained,
/// QoS 1); whether it succeeded.
pub fn publish_retained(port: u16, secs: u64, topic: &str, file: &Path) -> bool {
    Command::new("timeout")
        .arg(secs.to_string())
        .args(["mosquitto_pub", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-r", "-q", "1", "-t", topic, "-f"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The port of a broker's URL (`mqtt://127.0.0.1:PORT`).
pub fn port_of(url: &str) -> anyhow::Result<u16> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {url}"))
}

/// The response headers of `url` over HTTP/2 (`curl -s --http2 -D -`), line ends without
/// their `\r`, sending `cookie` when given.
pub fn headers_of(url: &str, ca: &Path, cookie: Option<&str>) -> String {
    let mut command = Command::new("curl");
    command
        .args(["-s", "--http2", "--max-time", "5", "--cacert"])
        .arg(ca);
    command.args(["-D", "-", "-o", "/dev/null"]);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("cookie: {cookie}")]);
    }
    let out = command.arg(url).stderr(Stdio::null()).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).replace('\r', ""))
        .unwrap_or_default()
}

/// The value of the first header `name` (any case) of `all`.
pub fn header<'a>(all: &'a str, name: &'a str) -> Option<&'a str> {
    headers(all, name).next()
}

/// The values of every header `name` (any case) of `all`, in order.
pub fn headers<'a>(all: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    all.lines().filter_map(move |line| {
        let (key, value) = line.split_once(": ")?;
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

/// The HTTP status `url` answers with over HTTP/2 (`curl -s --http2 -w '%{http_code}'`,
/// at most 3 s), trusting `ca`.
pub fn status_of(url: &str, ca: &Path) -> String {
    Command::new("curl")
        .args(["-s", "--http2", "--max-time", "3", "--cacert"])
        .arg(ca)
        .args(["-o", "/dev/null", "-w", "%{http_code}", url])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The body of `url` (`curl -s`, whatever its status), trusting `ca`.
pub fn get_any(url: &str, ca: &Path) -> Vec<u8> {
    Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(ca)
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default()
}

/// Whether a file is there and not empty (`[ -s FILE ]`).
pub fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Whether the process `pid` is there (`kill -0`) and not a zombie.
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| !status.contains("State:\tZ"))
}

/// An nginx backend's stub_status (on `status_port`) "accepts" and "requests" (the third line's first and third
/// numbers).
pub fn backend_counts(status_port: u16) -> Option<[i64; 2]> {
    let body = get(&format!("http://127.0.0.1:{}/status", status_port), None, 5)?;
    let text = String::from_utf8_lossy(&body);
    let fields: Vec<&str> = text.lines().nth(2)?.split_whitespace().collect();
    Some([fields.first()?.parse().ok()?, fields.get(2)?.parse().ok()?])
}

/// The sticky cookie of each backend from load balancer `name` on `port`: new viewers (no
/// cookie) until each backend was chosen once, in 40 requests at most; each must then keep
/// a viewer on its backend three times without a new cookie.
pub fn sticky_cookies(name: &str, port: u16, ca: &Path) -> anyhow::Result<[String; 2]> {
    let url = format!("https://localhost:{port}{PLAYLIST}");
    let mut cookies: [Option<String>; 2] = [None, None];
    let mut last = String::new();
    for _ in 0..40 {
        last = headers_of(&url, ca, None);
        let node = header(&last, "x-sealcast-node").map(|n| n.strip_prefix("bench-").unwrap_or(n));
        let cookie = headers(&last, "set-cookie")
            .find(|c| c.starts_with("sealcast_node="))
            .map(|c| c.split(';').next().unwrap_or(c).to_owned());
        if let (Some(node), Some(cookie)) = (node, cookie) {
            match node {
                "b1" => cookies[0] = Some(cookie),
                "b2" => cookies[1] = Some(cookie),
                _ => {}
            }
        }
        if cookies.iter().all(Option::is_some) {
            break;
        }
    }
    let mut found = Vec::new();
    for (i, b) in ["b1", "b2"].into_iter().enumerate() {
        let Some(cookie) = cookies[i].clone() else {
            bail!(
                "lb: {name} never placed a new viewer on {b} in 40 requests (last headers: {last})"
            );
        };
        for _ in 0..3 {
            let h = headers_of(&url, ca, Some(&cookie));
            let want = format!("x-sealcast-node: bench-{b}");
            ensure!(
                h.lines().any(|l| l.eq_ignore_ascii_case(&want)),
                "lb: {name}: the cookie for {b} is not sticky: {h}"
            );
            ensure!(
                !h.lines().any(|l| l
                    .to_ascii_lowercase()
                    .starts_with("set-cookie: sealcast_node")),
                "lb: {name}: a sticky request got a new cookie: {h}"
            );
        }
        found.push(cookie);
    }
    found.try_into().map_err(|_| anyhow::anyhow!("two cookies"))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_in_any_case() {
        let headers = "HTTP/2 200\ncontent-type: text/plain\nX-Sealcast-Node: bench-b2\n\
                       set-cookie: sealcast_node=abc; Path=/; Secure\n";
        assert_eq!(header(headers, "x-sealcast-node"), Some("bench-b2"));
        assert_eq!(
            header(headers, "set-cookie"),
            Some("sealcast_node=abc; Path=/; Secure")
        );
        assert_eq!(header(headers, "location"), None);
        assert_eq!(port_of("mqtt://127.0.0.1:18830").ok(), Some(18830));
    }
}
