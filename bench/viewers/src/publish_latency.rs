//! What `bench/publish-latency.sh` measures while `sealcast up --broadcast 3` gets a
//! real-time publish (`sealcast-bench sample publish-latency`): when each segment is first
//! listed on each broadcast node, and what the run cost the `up` process. It was Python
//! (`bench/publish_latency.py poll`, in git history before this module), whose raw JSON it
//! writes; `sealcast-bench report publish-latency` ([`crate::reports::publish_latency`])
//! makes the statistics and the section from it.
//!
//! - One thread per node and rendition polls the node's media playlist every `--interval`
//!   seconds and notes the wall clock (taken when the whole answer has arrived) at which
//!   each sequence number first appears, with its `EXTINF` duration and whether it is a
//!   gap. The threads speak plain HTTP/1.1 over one keep-alive `std::net` connection each,
//!   as the Python's `http.client` did: a 10 ms poll on a loaded two-core machine wants
//!   the least client work and no async runtime between the answer and its time stamp. A
//!   request that fails (2 s timeout) counts as a poll error and the next one reconnects.
//! - Every node's `/metrics` (fetched with reqwest, as the other samples do) and the
//!   process's CPU ticks at the start and at the end, and every thread's ticks each 0.2 s
//!   (so that threads that exit before the end are still counted).
//!
//! `sealcast-bench sample metrics NODE` is the `/metrics` snapshot alone, as
//! `bench/latency.sh` takes it before and after its runs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::reports::python::{splitlines, InOrder};

/// What `sample publish-latency` is given.
#[derive(Debug, clap::Args)]
pub struct Poll {
    /// The `sealcast up` process whose CPU is counted, whole and per thread.
    #[arg(long)]
    pub pid: u32,
    /// The stream whose playlists are polled.
    #[arg(long, default_value = "main")]
    pub stream: String,
    /// The renditions polled, comma-separated.
    #[arg(long, default_value = "720p")]
    pub renditions: String,
    /// Seconds between two polls of one playlist.
    #[arg(long, default_value_t = 0.01)]
    pub interval: f64,
    /// A file made once the pollers run.
    #[arg(long)]
    pub ready: PathBuf,
    /// The polls stop when this file appears.
    #[arg(long)]
    pub stop: PathBuf,
    /// The publisher, in the words the report gives it.
    #[arg(long, default_value = "")]
    pub publisher: String,
    /// The broadcast nodes' base URLs: node1, node2, … in this order.
    #[arg(required = true)]
    pub urls: Vec<String>,
}

/// The wall clock as Python's `time.time()` gives it: nanoseconds since the epoch over 1e9.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_nanos() as f64 / 1e9)
}

/// Every sample line of a Prometheus text page: `name{labels}` (all before the line's last
/// space) and its value, in the page's order; a name seen again keeps its place and takes
/// the later value (a Python dict's assignment). Comments, blank lines and values that do
/// not read as a float are left out. A value read as +Inf or NaN is written as JSON null.
pub(crate) fn parse_metrics(text: &str) -> InOrder<f64> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for line in splitlines(text) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap_or(("", line));
        let Ok(value) = crate::reports::python::float(value) else {
            continue;
        };
        match at.get(key) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(key.to_owned(), out.len());
                out.push((key.to_owned(), value));
            }
        }
    }
    InOrder(out)
}

/// The samples of `url`'s `/metrics` (5 s timeout; an error status fails).
pub(crate) async fn metrics(url: &str) -> anyhow::Result<InOrder<f64>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("an HTTP client")?;
    let url = format!("{}/metrics", url.trim_end_matches('/'));
    let body = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| url.clone())?
        .bytes()
        .await
        .with_context(|| url.clone())?;
    let text = String::from_utf8(body.to_vec()).with_context(|| format!("{url}: not UTF-8"))?;
    Ok(parse_metrics(&text))
}

/// `sample metrics`: `{"at": seconds since the epoch, "m": the samples}`, the time taken
/// before the fetch.
pub fn snapshot(url: &str) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Snapshot {
        at: f64,
        m: InOrder<f64>,
    }
    let at = unix_now();
    let m = runtime()?.block_on(metrics(url))?;
    Ok(serde_json::to_string(&Snapshot { at, m })?)
}

/// A runtime for the metrics fetches.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")
}

/// What a media playlist lists: each segment's sequence number, `EXTINF` duration (none
/// when it had none) and whether `EXT-X-GAP` marked it, in the playlist's order (a number
/// listed again keeps its place and takes the later entry); and whether it has ended. A
/// segment's number is its file name's when that is `N.ts…`, else the media sequence
/// counted on.
pub type Listed = Vec<(i64, Option<f64>, bool)>;

/// Reads a media playlist as the Python did (see [`Listed`]); an error when a sequence
/// number or a duration is not a number (the Python's poller died there; this one counts
/// a poll error).
pub fn parse_playlist(text: &str) -> anyhow::Result<(Listed, bool)> {
    let (mut seq, mut duration, mut gap) = (0i64, None, false);
    let mut out: Listed = Vec::new();
    let blank = |c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c);
    for line in splitlines(text) {
        let line = line.trim_matches(blank);
        if let Some(n) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = n
                .trim_matches(blank)
                .parse()
                .with_context(|| format!("media sequence {n:?}"))?;
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let d = d.split(',').next().unwrap_or_default();
            duration = Some(crate::reports::python::float(d)?);
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            let name = line.rsplit('/').next().unwrap_or(line);
            let digits = name.len() - name.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let n = match name[digits..].starts_with(".ts") && digits > 0 {
                true => name[..digits].parse().context("a segment number")?,
                false => seq,
            };
            match out.iter_mut().find(|e| e.0 == n) {
                Some(e) => *e = (n, duration, gap),
                None => out.push((n, duration, gap)),
            }
            (seq, duration, gap) = (n + 1, None, false);
        }
    }
    Ok((out, text.contains("#EXT-X-ENDLIST")))
}

/// One plain HTTP/1.1 connection, kept alive between requests (2 s timeouts).
struct Client {
    addrs: Vec<SocketAddr>,
    /// `Host:` as `http.client` sends it: the host, and the port unless it is 80.
    host: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    const TIMEOUT: Duration = Duration::from_secs(2);

    fn new(url: &url::Url) -> anyhow::Result<Client> {
        let addrs = url
            .socket_addrs(|| Some(80))
            .with_context(|| format!("resolving {url}"))?;
        let host = url.host_str().context("a URL without a host")?;
        let host = match url.port() {
            Some(p) if p != 80 => format!("{host}:{p}"),
            _ => host.to_owned(),
        };
        Ok(Client {
            addrs,
            host,
            conn: None,
        })
    }

    /// GET `path`: the status and the body. On an error the connection is dropped (the
    /// next request opens another).
    fn get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let answer = self.exchange(path);
        if answer.is_err() {
            self.conn = None;
        }
        answer
    }

    fn exchange(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        use std::io::{Error, ErrorKind};
        let bad = |what: &str| Error::new(ErrorKind::InvalidData, what.to_owned());
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let socket = TcpStream::connect_timeout(
                    self.addrs.first().ok_or_else(|| bad("no address"))?,
                    Self::TIMEOUT,
                )?;
                socket.set_read_timeout(Some(Self::TIMEOUT))?;
                socket.set_write_timeout(Some(Self::TIMEOUT))?;
                socket.set_nodelay(true)?;
                self.conn.insert(BufReader::new(socket))
            }
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: identity\r\n\r\n",
            self.host
        );
        conn.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        // Informational answers (1xx) come before the real one.
        let (status, headers) = loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "the server closed"));
            }
            let status: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .filter(|_| line.starts_with("HTTP/"))
                .ok_or_else(|| bad("a bad status line"))?;
            let mut headers = Vec::new();
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let header = line.trim_end_matches(['\r', '\n']);
                if header.is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            if !(100..200).contains(&status) {
                break (status, headers);
            }
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let mut body = Vec::new();
        let mut close = header("connection").is_some_and(|c| c.contains("close"));
        if status == 204 || status == 304 {
        } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let size = line.trim().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16).map_err(|_| bad("a bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the blank line.
                    loop {
                        line.clear();
                        if conn.read_line(&mut line)? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                conn.read_exact(&mut body[start..])?;
                line.clear();
                conn.read_line(&mut line)?;
            }
        } else if let Some(length) = header("content-length") {
            let length: usize = length.parse().map_err(|_| bad("a bad length"))?;
            body.resize(length, 0);
            conn.read_exact(&mut body)?;
        } else {
            conn.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            self.conn = None;
        }
        Ok((status, body))
    }
}

/// A sequence number's first listing on a node: the wall clock when the answer that
/// listed it had arrived, its duration and whether it is a gap (a JSON array in the raw).
type First = (f64, Option<f64>, bool);

/// What one poller saw: each sequence number's first listing in the order first seen, its
/// polls and its failed polls.
#[derive(Debug, Default)]
struct Polled {
    seen: Vec<(i64, First)>,
    polls: u64,
    errors: u64,
}

/// Polls `path` on `client` every `interval` until `stop`.
fn poller(mut client: Client, path: &str, interval: Duration, stop: &AtomicBool) -> Polled {
    let mut out = Polled::default();
    let mut known: std::collections::HashSet<i64> = Default::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match client.get(path) {
            Ok((status, body)) => {
                let now = unix_now();
                out.polls += 1;
                if status == 200 {
                    let listed = std::str::from_utf8(&body)
                        .map_err(anyhow::Error::from)
                        .and_then(parse_playlist);
                    match listed {
                        Ok((entries, _)) => {
                            for (seq, duration, gap) in entries {
                                if known.insert(seq) {
                                    out.seen.push((seq, (now, duration, gap)));
                                }
                            }
                        }
                        Err(_) => out.errors += 1,
                    }
                }
            }
            Err(_) => out.errors += 1,
        }
        next += interval;
        match next.checked_duration_since(Instant::now()) {
            Some(delay) if !delay.is_zero() => std::thread::sleep(delay),
            _ => next = Instant::now(),
        }
    }
    out
}

/// A `/proc/…/stat` line's command name (between the first `(` and the last `)`) and its
/// utime + stime in ticks.
fn proc_ticks(path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat.get(open + 1..close).unwrap_or_default().to_owned();
    Some((name, crate::procstat::process_ticks(&stat)?))
}

/// Each thread of the process seen so far: its id, last name, first and highest ticks.
#[derive(Debug, Default)]
struct Threads(Vec<(String, String, u64, u64)>);

impl Threads {
    /// Reads every thread of `pid` now (a thread that cannot be read is passed over); an
    /// error when the process is gone.
    fn sample(&mut self, pid: u32) -> anyhow::Result<()> {
        let dir = format!("/proc/{pid}/task");
        for entry in std::fs::read_dir(&dir).with_context(|| dir.clone())? {
            let tid = entry.with_context(|| dir.clone())?.file_name();
            let tid = tid.to_string_lossy();
            let Some((name, ticks)) = proc_ticks(&format!("{dir}/{tid}/stat")) else {
                continue;
            };
            match self.0.iter_mut().find(|t| t.0 == tid) {
                Some(t) => (t.1, t.3) = (name, t.3.max(ticks)),
                None => self.0.push((tid.into_owned(), name, ticks, ticks)),
            }
        }
        Ok(())
    }
}

/// The raw JSON `report publish-latency` reads, its members in the Python's order.
#[derive(Debug, Serialize)]
struct Raw<'a> {
    interval_s: f64,
    stream: &'a str,
    wall_s: f64,
    nodes: Vec<String>,
    seen: InOrder<InOrder<First>>,
    polls: InOrder<u64>,
    poll_errors: InOrder<u64>,
    process_cpu_s: f64,
    threads_cpu_s: Vec<(String, f64)>,
    metrics_start: InOrder<InOrder<f64>>,
    metrics_end: InOrder<InOrder<f64>>,
    publisher: &'a str,
}

/// `sample publish-latency`: polls until the stop file appears; the raw JSON, one line.
pub fn poll(args: &Poll) -> anyhow::Result<String> {
    let nodes: Vec<(String, &str)> = args
        .urls
        .iter()
        .enumerate()
        .map(|(i, u)| (format!("node{}", i + 1), u.as_str()))
        .collect();
    let hz = crate::procstat::clock_ticks() as f64;
    let snapshot = |rt: &tokio::runtime::Runtime| -> anyhow::Result<InOrder<InOrder<f64>>> {
        let mut out = Vec::new();
        for (node, url) in &nodes {
            out.push((node.clone(), rt.block_on(metrics(url))?));
        }
        Ok(InOrder(out))
    };
    let rt = runtime()?;
    let process = format!("/proc/{}/stat", args.pid);
    let m0 = snapshot(&rt)?;
    let (_, cpu0) = proc_ticks(&process).with_context(|| format!("reading {process}"))?;
    let mut threads = Threads::default();
    threads.sample(args.pid)?;
    let t0 = unix_now();
    let stop = AtomicBool::new(false);
    let interval = Duration::try_from_secs_f64(args.interval).context("--interval")?;
    let mut keys = Vec::new();
    let mut clients = Vec::new();
    for (node, url) in &nodes {
        let parsed = url::Url::parse(url).with_context(|| format!("the URL {url}"))?;
        for rendition in args.renditions.split(',') {
            let path = format!(
                "{}/live/{}/{rendition}/index.m3u8",
                parsed.path().trim_end_matches('/'),
                args.stream
            );
            keys.push(format!("{node}|{rendition}"));
            clients.push((Client::new(&parsed)?, path));
        }
    }
    let polled: Vec<Polled> = std::thread::scope(|scope| -> anyhow::Result<Vec<Polled>> {
        let stop = &stop;
        let workers: Vec<_> = clients
            .into_iter()
            .map(|(client, path)| scope.spawn(move || poller(client, &path, interval, stop)))
            .collect();
        let waited = (|| -> anyhow::Result<()> {
            std::fs::File::create(&args.ready)
                .with_context(|| format!("making {}", args.ready.display()))?;
            while !args.stop.exists() {
                std::thread::sleep(Duration::from_millis(200));
                threads.sample(args.pid)?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        let polled = workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("a poller panicked")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        waited.map(|()| polled)
    })?;
    let t1 = unix_now();
    threads.sample(args.pid)?;
    let (_, cpu1) = proc_ticks(&process).with_context(|| format!("reading {process}"))?;
    let m1 = snapshot(&rt)?;
    if cpu1 < cpu0 {
        bail!("{process}: fewer ticks at the end than at the start");
    }
    let mut seen = Vec::new();
    let (mut polls, mut errors) = (Vec::new(), Vec::new());
    for (key, p) in keys.into_iter().zip(polled) {
        let listed = p.seen.into_iter().map(|(s, v)| (s.to_string(), v));
        seen.push((key.clone(), InOrder(listed.collect())));
        polls.push((key.clone(), p.polls));
        errors.push((key, p.errors));
    }
    let raw = Raw {
        interval_s: args.interval,
        stream: &args.stream,
        wall_s: t1 - t0,
        nodes: nodes.iter().map(|(n, _)| n.clone()).collect(),
        seen: InOrder(seen),
        polls: InOrder(polls),
        poll_errors: InOrder(errors),
        process_cpu_s: (cpu1 - cpu0) as f64 / hz,
        threads_cpu_s: threads
            .0
            .into_iter()
            .map(|(_, name, first, last)| (name, (last - first) as f64 / hz))
            .collect(),
        metrics_start: m0,
        metrics_end: m1,
        publisher: &args.publisher,
    };
    Ok(serde_json::to_string(&raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_read_as_the_python_read_them() {
        // A TS playlist as a node serves it: numbered files, a gap, a segment without
        // EXTINF, then the end.
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:40\n\
                    #EXTINF:2.000,\n/live/main/720p/40.ts\n#EXT-X-GAP\n#EXTINF:1.967,\n41.ts?x=1\n\
                    #EXTINF:2.033,\nseg.ts\nnext.ts\r\n#EXT-X-ENDLIST\n";
        let (listed, ended) = parse_playlist(text).expect("a playlist");
        assert_eq!(
            listed,
            [
                (40, Some(2.0), false),
                (41, Some(1.967), true),
                (42, Some(2.033), false),
                (43, None, false)
            ]
        );
        assert!(ended);
        // CMAF names are not N.ts: the media sequence counts.
        let (listed, ended) =
            parse_playlist("#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2,\nseg7.m4s\n#EXTINF:2,\n8.m4s\n")
                .expect("a playlist");
        assert_eq!(listed, [(7, Some(2.0), false), (8, Some(2.0), false)]);
        assert!(!ended);
        assert!(parse_playlist("#EXTINF:x,\n1.ts\n").is_err());
    }

    #[test]
    fn metrics_keep_the_page_order() {
        let page = "# HELP a x\n# TYPE a counter\nb_total{node=\"n 1\"} 3\na 1.5 1700000000\n\
                    \nbad line\nb_total{node=\"n 1\"} 4\nh_bucket{le=\"+Inf\"} +Inf\n";
        let m = parse_metrics(page);
        let keys: Vec<&str> = m.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["b_total{node=\"n 1\"}", "a 1.5", "h_bucket{le=\"+Inf\"}"]
        );
        assert_eq!(m.0[0].1, 4.0);
        assert_eq!(m.0[1].1, 1_700_000_000.0);
        assert_eq!(
            serde_json::to_string(&m).expect("JSON"),
            r#"{"b_total{node=\"n 1\"}":4.0,"a 1.5":1700000000.0,"h_bucket{le=\"+Inf\"}":null}"#
        );
    }

    /// A node's playlist over one keep-alive connection: content-length and chunked
    /// answers, and a server that closes after answering.
    #[test]
    fn the_client_keeps_its_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let server = std::thread::spawn(move || {
            let mut accepted = 0;
            for stream in listener.incoming().take(2) {
                accepted += 1;
                let mut stream = stream.expect("a connection");
                let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
                let answers: &[&str] = if accepted == 1 {
                    &[
                        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                        "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end",
                    ]
                } else {
                    &["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
                };
                for answer in answers {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).expect("a request");
                        if line.trim().is_empty() {
                            break;
                        }
                    }
                    stream.write_all(answer.as_bytes()).expect("an answer");
                }
            }
            accepted
        });
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).expect("a URL");
        let mut client = Client::new(&url).expect("a client");
        assert_eq!(client.host, format!("127.0.0.1:{port}"));
        assert_eq!(client.get("/a").expect("1"), (200, b"hello".to_vec()));
        assert_eq!(client.get("/b").expect("2"), (404, b"abcde".to_vec()));
        assert_eq!(
            client.get("/c").expect("3"),
            (200, b"until the end".to_vec())
        );
        assert!(client.conn.is_none());
        assert_eq!(client.get("/d").expect("4"), (200, b"ok".to_vec()));
        assert_eq!(server.join().expect("the server"), 2);
    }
}
