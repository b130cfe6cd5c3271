//! bench/stream-memory.sh's floor: the bytes of the live streams' windows as a node lists
//! them, read from the node itself: every rung's media playlist of every stream, and the
//! size (HEAD, Content-Length) of every segment, part and init segment it lists
//! ([`floor`]); and the wait before each point ([`wait`], `sealcast-bench check
//! stream-window`): until every rung of a stream lists a full window and has slid on by
//! GRACE+1 segments (asked every 0.2 s), so the node also holds the segments it keeps
//! fetchable after they leave the window. Both were Python (the script's heredoc `sm.py`,
//! in git history before this module); the sampling around the floor is
//! [`crate::memory_point`].
//!
//! HTTP: reqwest (the crate's client) on a current-thread runtime, one request after
//! another, so one keep-alive HTTP/1.1 connection as the Python's `http.client` kept; a
//! request that fails is made once more (the Python reconnected once). The sizes of files
//! that do not change (those listed) are asked once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::reports::python::python_float;

/// The node, asked over one kept-alive connection; the sizes of listed files remembered.
#[derive(Debug)]
pub struct Node {
    client: reqwest::Client,
    base: String,
    sizes: HashMap<String, u64>,
}

impl Node {
    /// The node at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("an HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            sizes: HashMap::new(),
        })
    }

    /// Status, Content-Length and body of `method path`; made twice before it fails.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<(u16, Option<String>, bytes::Bytes), reqwest::Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let url = format!("{}{path}", self.base);
            let got = async {
                let answer = self.client.request(method.clone(), url).send().await?;
                let length = answer
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                Ok((answer.status().as_u16(), length, answer.bytes().await?))
            }
            .await;
            match got {
                Err(_) if attempt < 2 => {}
                got => return got,
            }
        }
    }

    /// The text of `path` when the node answers 200.
    async fn text(&self, path: &str) -> anyhow::Result<Option<String>> {
        let (status, _, body) = self.request(reqwest::Method::GET, path).await?;
        if status != 200 {
            return Ok(None);
        }
        let text = String::from_utf8(body.to_vec()).with_context(|| format!("{path}: UTF-8"))?;
        Ok(Some(text))
    }

    /// The bytes of a file the node serves (none if it does not): its Content-Length to a
    /// HEAD, or the body's length when there is none; remembered with `cache`.
    async fn size(&mut self, path: &str, cache: bool) -> anyhow::Result<Option<u64>> {
        if cache {
            if let Some(n) = self.sizes.get(path) {
                return Ok(Some(*n));
            }
        }
        let (status, length, _) = self.request(reqwest::Method::HEAD, path).await?;
        if status != 200 {
            return Ok(None);
        }
        let n = match length {
            Some(length) => length
                .trim()
                .parse()
                .with_context(|| format!("{path}: Content-Length {length:?}"))?,
            None => self.request(reqwest::Method::GET, path).await?.2.len() as u64,
        };
        if cache {
            self.sizes.insert(path.to_owned(), n);
        }
        Ok(Some(n))
    }
}

/// `uri` resolved against `base` (a path), as `urllib.parse.urljoin` does.
fn join(base: &str, uri: &str) -> anyhow::Result<String> {
    let base = url::Url::parse(&format!("http://node{base}")).context("a path")?;
    let url = base
        .join(uri)
        .with_context(|| format!("{uri} against {base}"))?;
    Ok(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    })
}

/// The first `URI="…"` of a line with something between its quotes.
fn first_uri(line: &str) -> Option<&str> {
    line.match_indices("URI=\"").find_map(|(at, _)| {
        let rest = &line[at + 5..];
        let end = rest.find('"')?;
        (end > 0).then(|| &rest[..end])
    })
}

/// The leading digits of `name` followed by a dot, as a number.
fn leading_number(name: &str) -> Option<(i64, &str)> {
    let end = name.find(|c: char| !c.is_ascii_digit())?;
    let rest = name[end..].strip_prefix('.')?;
    Some((name[..end].parse().ok()?, rest))
}

/// A media playlist as the measurement reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Media {
    /// `EXT-X-MEDIA-SEQUENCE` (0 without it).
    pub msn: i64,
    /// The init segment's URI.
    pub init: Option<String>,
    /// The segments: sequence number and URI.
    pub segments: Vec<(i64, String)>,
    /// The parts: sequence number of their segment, index and URI.
    pub parts: Vec<(i64, i64, String)>,
    /// Whether it has `#EXT-X-ENDLIST`.
    pub ended: bool,
}

/// Reads a media playlist the node wrote (its segments and parts named `N.m4s`, `N.I.m4s`).
pub fn media(text: &str) -> anyhow::Result<Media> {
    let mut m = Media {
        ended: text.contains("#EXT-X-ENDLIST"),
        ..Media::default()
    };
    let name = |uri: &str| uri.rsplit('/').next().unwrap_or(uri).to_owned();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            m.msn = n.trim().parse().with_context(|| format!("{line:?}"))?;
        } else if line.starts_with("#EXT-X-MAP:") {
            m.init = Some(
                first_uri(line)
                    .with_context(|| format!("{line:?}"))?
                    .to_owned(),
            );
        } else if line.starts_with("#EXT-X-PART:") {
            let uri = first_uri(line).with_context(|| format!("{line:?}"))?;
            let name = name(uri);
            let (seq, rest) = leading_number(&name).with_context(|| format!("{line:?}"))?;
            let (idx, _) = leading_number(rest).with_context(|| format!("{line:?}"))?;
            m.parts.push((seq, idx, uri.to_owned()));
        } else if !line.is_empty() && !line.starts_with('#') {
            let (seq, _) = leading_number(&name(line)).with_context(|| format!("{line:?}"))?;
            m.segments.push((seq, line.to_owned()));
        }
    }
    Ok(m)
}

/// The `#EXTINF` durations of a playlist, summed in order.
fn seconds(text: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for (at, tag) in text.match_indices("#EXTINF:") {
        let rest = &text[at + tag.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if end > 0 {
            total += rest[..end]
                .parse::<f64>()
                .with_context(|| format!("#EXTINF:{}", &rest[..end]))?;
        }
    }
    Ok(total)
}

/// The media playlists of `stream`'s master playlist (none when it is not there).
async fn variants(node: &Node, stream: &str) -> anyhow::Result<Vec<String>> {
    let base = format!("/live/{stream}/master.m3u8");
    let Some(text) = node.text(&base).await? else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| join(&base, l))
        .collect()
}

/// Bytes of the streams' windows as the node lists them at one time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Floor {
    /// Segments, parts and init segments listed.
    pub listed: u64,
    /// Each byte once: segments, the open segment's parts, init segments.
    pub unique: u64,
    /// Listed, and what else the node answers for (segments after the window, parts of
    /// segments no longer listed with parts).
    pub served: u64,
    /// The segments'.
    pub segments: u64,
    /// The parts'.
    pub parts: u64,
    /// The init segments'.
    pub init: u64,
    /// The media playlists' characters.
    pub playlists: u64,
    /// The seconds the playlists list.
    pub seconds: f64,
    /// The media playlists read.
    pub rungs: u64,
    /// Per rung name (the same name of every stream together), in the order met: segment
    /// bytes and seconds.
    pub per_rung: Vec<(String, u64, f64)>,
}

/// The size of `path` or 0 (Python's `size(...) or 0`).
async fn bytes_of(node: &mut Node, path: String) -> anyhow::Result<u64> {
    Ok(node.size(&path, true).await?.unwrap_or(0))
}

/// The floor of `streams` now.
pub async fn floor(node: &mut Node, streams: &[String]) -> anyhow::Result<Floor> {
    let mut out = Floor::default();
    for s in streams {
        for path in variants(node, s).await? {
            let Some(text) = node.text(&path).await? else {
                continue;
            };
            let m = media(&text)?;
            out.rungs += 1;
            out.playlists += text.chars().count() as u64;
            out.seconds += seconds(&text)?;
            let b_init = match &m.init {
                Some(init) => bytes_of(node, join(&path, init)?).await?,
                None => 0,
            };
            let mut b_segs = 0;
            for (_, u) in &m.segments {
                b_segs += bytes_of(node, join(&path, u)?).await?;
            }
            let mut b_parts = 0;
            for (_, _, u) in &m.parts {
                b_parts += bytes_of(node, join(&path, u)?).await?;
            }
            let last = m.segments.last().map_or(-1, |(q, _)| *q);
            let mut b_open = 0;
            for (_, _, u) in m.parts.iter().filter(|(q, _, _)| *q > last) {
                b_open += bytes_of(node, join(&path, u)?).await?;
            }
            // What else the node answers for: segments kept after the window, and parts of
            // segments no longer listed with parts.
            let mut extra = 0;
            for q in ((m.msn - 8)..m.msn).rev().take_while(|q| *q >= 0) {
                match node.size(&join(&path, &format!("{q}.m4s"))?, false).await? {
                    Some(n) => extra += n,
                    None => break,
                }
            }
            if let Some(first) = m.parts.iter().map(|(q, _, _)| *q).min() {
                for q in ((first - 4)..first).rev().take_while(|q| *q >= 0) {
                    let mut got = 0;
                    for i in 0..64 {
                        match node
                            .size(&join(&path, &format!("{q}.{i}.m4s"))?, false)
                            .await?
                        {
                            Some(n) => got += n,
                            None => break,
                        }
                    }
                    if got == 0 {
                        break;
                    }
                    extra += got;
                }
            }
            let listed = b_init + b_segs + b_parts;
            out.listed += listed;
            out.unique += b_init + b_segs + b_open;
            out.served += listed + extra;
            out.segments += b_segs;
            out.parts += b_parts;
            out.init += b_init;
            let rung = path.rsplit('/').nth(1).unwrap_or_default().to_owned();
            let secs = seconds(&text)?;
            match out.per_rung.iter_mut().find(|(r, _, _)| *r == rung) {
                Some((_, bytes, s)) => {
                    *bytes += b_segs;
                    *s += secs;
                }
                None => out.per_rung.push((rung, b_segs, 0.0 + secs)),
            }
        }
    }
    Ok(out)
}

/// A runtime for the node's requests.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")
}

/// Waits until every rung of `stream` (at least `rungs` of them) lists `window` segments
/// and has slid on by `grace` + 1 since it was first seen with segments, asking every
/// 0.2 s; fails when the stream ended, or after `timeout` seconds saying how far it got.
pub fn wait(
    node: &str,
    stream: &str,
    rungs: usize,
    window: usize,
    grace: i64,
    timeout: f64,
) -> anyhow::Result<()> {
    let node = Node::new(node)?;
    let runtime = runtime()?;
    let deadline = Instant::now() + Duration::try_from_secs_f64(timeout).context("timeout")?;
    let mut first: HashMap<String, Option<i64>> = HashMap::new();
    let mut state = "no master playlist".to_owned();
    while Instant::now() < deadline {
        let looked = runtime.block_on(async {
            let paths = variants(&node, stream).await?;
            if paths.len() < rungs {
                return anyhow::Ok((false, format!("{} of {rungs} rungs listed", paths.len())));
            }
            let mut done = 0;
            for path in &paths {
                let Some(text) = node.text(path).await? else {
                    continue;
                };
                let m = media(&text)?;
                if m.ended {
                    bail!("{stream} ended");
                }
                let seen = !m.segments.is_empty();
                let at = first.entry(path.clone()).or_insert(None);
                if at.is_none() && seen {
                    *at = Some(m.msn);
                }
                if m.segments.len() >= window && at.is_some_and(|at| m.msn - at > grace) {
                    done += 1;
                }
            }
            Ok((
                done == paths.len(),
                format!("{done} of {} rungs full", paths.len()),
            ))
        });
        match looked {
            Ok((true, _)) => return Ok(()),
            Ok((false, now)) => state = now,
            // A node that does not answer is asked again; anything else ends the wait.
            Err(e) if e.downcast_ref::<reqwest::Error>().is_some() => state = format!("{e:#}"),
            Err(e) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "{stream}: no full window after {} s ({state})",
        python_float(timeout)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    /// A stream `s` of one rung, 360p: a window of two segments, parts of the second and of
    /// the open one, and what the node still answers for: segments 9 and 8, parts 10.0 and
    /// 10.1.
    pub(crate) const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\n10.m4s\n\
        #EXT-X-PART:DURATION=0.75,URI=\"11.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.75,URI=\"11.1.m4s\"\n#EXTINF:1.5,\n11.m4s\n\
        #EXT-X-PART:DURATION=0.75,URI=\"12.0.m4s\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"12.1.m4s\"\n";

    /// [`PLAYLIST`]'s floor, as `sm.py`'s `floor` found it served by a static server.
    pub(crate) fn tiny_floor() -> Floor {
        Floor {
            listed: 5800,
            unique: 3800,
            served: 12800,
            segments: 3000,
            parts: 2700,
            init: 100,
            playlists: 307,
            seconds: 3.5,
            rungs: 1,
            per_rung: vec![("360p".to_owned(), 3000, 3.5)],
        }
    }

    #[test]
    fn a_playlist_as_the_measurement_reads_it() {
        let m = media(PLAYLIST).expect("a playlist");
        assert_eq!(
            (m.msn, m.init.as_deref(), m.ended),
            (10, Some("init.mp4"), false)
        );
        assert_eq!(
            m.segments,
            [(10, "10.m4s".to_owned()), (11, "11.m4s".to_owned())]
        );
        let parts: Vec<(i64, i64)> = m.parts.iter().map(|(q, i, _)| (*q, *i)).collect();
        assert_eq!(parts, [(11, 0), (11, 1), (12, 0)]);
        assert_eq!(seconds(PLAYLIST).expect("seconds"), 3.5);
        let node = media(include_str!("reports/testdata/ll-playlist.m3u8")).expect("a node's");
        assert_eq!(
            (node.msn, node.segments.len(), node.parts.len()),
            (22, 6, 22)
        );
        assert_eq!(
            join("/live/s/master.m3u8", "360p/index.m3u8").expect("join"),
            "/live/s/360p/index.m3u8"
        );
        assert_eq!(
            join("/live/s/360p/index.m3u8", "9.m4s").expect("join"),
            "/live/s/360p/9.m4s"
        );
    }

    #[tokio::test]
    async fn the_floor_of_a_tiny_stream() {
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n";
        files.insert("/live/s/master.m3u8".into(), master.into());
        files.insert("/live/s/360p/index.m3u8".into(), PLAYLIST.into());
        for (name, n) in [
            ("init.mp4", 100),
            ("10.m4s", 1000),
            ("11.m4s", 2000),
            ("11.0.m4s", 900),
            ("11.1.m4s", 1100),
            ("12.0.m4s", 700),
            ("9.m4s", 3000),
            ("8.m4s", 3100),
            ("10.0.m4s", 400),
            ("10.1.m4s", 500),
        ] {
            files.insert(format!("/live/s/360p/{name}"), vec![0; n]);
        }
        let files = Arc::new(files);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let files = Arc::clone(&files);
            async move {
                match files.get(uri.path()) {
                    Some(body) => (axum::http::StatusCode::OK, body.clone()),
                    None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut node = Node::new(&format!("http://{addr}")).expect("a client");
        let got = floor(&mut node, &["s".to_owned()])
            .await
            .expect("the floor");
        assert_eq!(got, tiny_floor());
        assert_eq!(
            floor(&mut node, &["none".to_owned()]).await.expect("none"),
            Floor::default()
        );
    }
}
