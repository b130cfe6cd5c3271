//! `sealcast-bench mirror`: keeps a directory a mirror of one live rendition of a node, for
//! nginx to serve next to the node in the benchmarks (bench/lib.sh's `bench_ll_nginx`,
//! bench/capacity.sh). It was Python (`bench/lib/mirror.py` and capacity.sh's heredoc
//! `mirror.py`, in git history before this module); the files it writes, the lines it
//! prints and when are theirs. Two ways to follow the rendition:
//!
//! - LL-HLS (the default), the way a low-latency player does: a blocking reload for the
//!   part after the last one listed (`_HLS_msn`/`_HLS_part`; none after a failure); on
//!   each answer, the parts, segments and init segment it lists that are not here yet,
//!   then the playlist (the node's own text).
//! - plain HLS (`--interval SECS`): the media playlist every SECS; when it changed, the
//!   segments and init segment it lists that are not here yet, then the playlist; a line
//!   `updates N` every 100 updates.
//!
//! Either way the master playlist is copied once at the start, each file is written beside
//! its place (`.tmp-NAME`, mode 644) and renamed into it, so nginx never serves a partial
//! file nor a playlist listing a file it lacks, and files not listed for 30 s are removed.
//! It prints `ready` once it has a playlist (LL-HLS: again after each failure, as the
//! Python did); a failure is a line `mirror: …` on standard error, and the mirror goes on.
//!
//! HTTP: reqwest (the crate's client) on a current-thread runtime. The requests go one
//! after another, so its pool keeps one keep-alive HTTP/1.1 connection to the node, as
//! the Python's `http.client` connection was; a request that fails is made once more (the
//! Python reconnected once).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// What `sealcast-bench mirror` is given.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The node's base URL (`http://127.0.0.1:PORT`).
    pub node: String,
    /// The master playlist's path (`/live/STREAM/master.m3u8`), copied once.
    pub master: String,
    /// The media playlist's path (`/live/STREAM/360p/index.m3u8`), followed.
    pub playlist: String,
    /// The directory nginx serves: each path goes under it.
    pub root: PathBuf,
    /// Poll the playlist every SECS (plain HLS) instead of following it with blocking
    /// reloads (LL-HLS).
    #[arg(long, value_name = "SECS")]
    pub interval: Option<f64>,
}

/// Files not listed for this long are removed.
const KEEP: Duration = Duration::from_secs(30);

/// The `(media sequence number, part index)` of the last `#EXT-X-PART` whose URI is
/// `MSN.PART.m4s`, the number as the playlist writes it; none when it lists none.
pub fn last_part(text: &str) -> Option<(&str, u64)> {
    text.split('\n')
        .rev()
        .filter(|line| line.starts_with("#EXT-X-PART:"))
        .find_map(|line| {
            // The last URI="…" of the line that names MSN.PART.m4s (the pattern was
            // `.*URI="(\d+)\.(\d+)\.m4s"`).
            line.rmatch_indices("URI=\"").find_map(|(at, _)| {
                let rest = &line[at + 5..];
                let (msn, rest) = rest.split_once('.')?;
                let (part, rest) = rest.split_once('.')?;
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                (digits(msn) && digits(part) && rest.starts_with("m4s\""))
                    .then(|| Some((msn, part.parse().ok()?)))
                    .flatten()
            })
        })
}

/// The blocking reload's query after `text`: the part after its last one; none (a plain
/// reload) when it lists none.
pub fn reload_query(text: &str) -> String {
    match last_part(text) {
        Some((msn, part)) => format!("?_HLS_msn={msn}&_HLS_part={}", part + 1),
        None => String::new(),
    }
}

/// The last `URI="…"` of a line that has one with something between its quotes.
fn last_uri(line: &str) -> Option<&str> {
    line.rmatch_indices("URI=\"").find_map(|(at, _)| {
        let rest = &line[at + 5..];
        let end = rest.find('"')?;
        (end > 0).then(|| &rest[..end])
    })
}

/// What an LL-HLS media playlist lists, in its order: each `#EXT-X-PART` and `#EXT-X-MAP`
/// URI and every line that is not a tag (a segment).
pub fn ll_listed(text: &str) -> Vec<&str> {
    text.split('\n')
        .filter_map(|line| {
            if line.starts_with("#EXT-X-PART:") || line.starts_with("#EXT-X-MAP:") {
                last_uri(line)
            } else if !line.is_empty() && !line.starts_with('#') {
                Some(line)
            } else {
                None
            }
        })
        .collect()
}

/// What a plain media playlist lists: its segments (lines that are not tags), then the
/// `#EXT-X-MAP` URIs.
pub fn hls_listed(text: &str) -> Vec<&str> {
    let segments = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let maps = text.lines().filter_map(|l| {
        let at = l.find("#EXT-X-MAP:")?;
        last_uri(&l[at..])
    });
    segments.chain(maps).collect()
}

/// The mirror's directory and what it holds: when each file was last listed.
#[derive(Debug)]
pub struct Dir {
    root: OsString,
    listed_at: HashMap<String, Instant>,
}

impl Dir {
    /// A mirror into `root`, holding nothing yet.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root: root.into_os_string(),
            listed_at: HashMap::new(),
        }
    }

    /// Where `path` (starting with `/`) goes: the root's name and the path joined as text.
    fn place(&self, path: &str) -> PathBuf {
        let mut place = self.root.clone();
        place.push(path);
        PathBuf::from(place)
    }

    /// Writes `body` to `.tmp-NAME` beside `path`'s place (its directories made, mode
    /// 755), makes it mode 644 and renames it into place.
    pub fn publish(&self, path: &str, body: &[u8]) -> anyhow::Result<()> {
        let dest = self.place(path);
        let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
            bail!("{path}: no file name");
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("making {}", dir.display()))?;
        let mut tmp_name = OsString::from(".tmp-");
        tmp_name.push(name);
        let tmp = dir.join(tmp_name);
        std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("chmod {}", tmp.display()))?;
        std::fs::rename(&tmp, &dest).with_context(|| format!("renaming to {}", dest.display()))
    }

    /// Whether `uri` was listed before (so is here).
    pub fn has(&self, uri: &str) -> bool {
        self.listed_at.contains_key(uri)
    }

    /// `uri` listed at `now`.
    pub fn listed(&mut self, uri: &str, now: Instant) {
        self.listed_at.insert(uri.to_owned(), now);
    }

    /// Removes the files under `base` (the playlist's directory, `/` at both ends) not
    /// listed for 30 s at `now`; one already gone is forgotten all the same.
    pub fn sweep(&mut self, base: &str, now: Instant) -> anyhow::Result<()> {
        let old: Vec<String> = self
            .listed_at
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) > KEEP)
            .map(|(uri, _)| uri.clone())
            .collect();
        for uri in old {
            let place = self.place(&format!("{base}{uri}"));
            match std::fs::remove_file(&place) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", place.display())),
            }
            self.listed_at.remove(&uri);
        }
        Ok(())
    }
}

/// The node, asked over one kept-alive connection.
struct Node {
    client: reqwest::Client,
    base: String,
}

impl Node {
    /// The body of a 200 answer to `path`; a request that fails to get an answer is made
    /// once more, and with `retry_status` one answered with another status too (the plain
    /// mirror's Python retried both, the LL one only the first).
    async fn fetch(&self, path: &str, retry_status: bool) -> anyhow::Result<bytes::Bytes> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let got = async {
                let answer = self
                    .client
                    .get(format!("{}{path}", self.base))
                    .send()
                    .await?;
                let status = answer.status();
                let body = answer.bytes().await?;
                anyhow::Ok((status, body))
            }
            .await;
            match got {
                Ok((status, body)) if status == reqwest::StatusCode::OK => return Ok(body),
                Ok((status, _)) if !retry_status || attempt == 2 => {
                    bail!("{path}: HTTP {}", status.as_u16())
                }
                Err(e) if attempt == 2 => return Err(e),
                _ => {}
            }
        }
    }
}

/// A line on standard output, at once (the scripts wait for it).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed standard output is nobody's loss: the mirror goes on.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Runs the mirror until it is stopped: fails only when the master playlist cannot be
/// copied at the start.
pub fn run(args: Args) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(if args.interval.is_some() { 5 } else { 15 });
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("an HTTP client")?;
    let node = Node {
        client,
        base: args.node.trim_end_matches('/').to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let mut dir = Dir::new(args.root.clone());
    runtime.block_on(async {
        let retry_status = args.interval.is_some();
        let master = node.fetch(&args.master, retry_status).await?;
        dir.publish(&args.master, &master)?;
        match args.interval {
            Some(every) => poll(&node, &mut dir, &args.playlist, every).await,
            None => follow(&node, &mut dir, &args.playlist).await,
        }
    })
}

/// The playlist's directory, `/` at its end.
fn base_of(playlist: &str) -> String {
    match playlist.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => format!("{playlist}/"),
    }
}

/// LL-HLS: one blocking reload after another.
async fn follow(node: &Node, dir: &mut Dir, playlist: &str) -> anyhow::Result<()> {
    let base = base_of(playlist);
    let mut text = String::new();
    loop {
        let step = async {
            let body = node
                .fetch(&format!("{playlist}{}", reload_query(&text)), false)
                .await?;
            let fresh = text.is_empty();
            text = String::from_utf8(body.to_vec()).context("the playlist is not UTF-8")?;
            let now = Instant::now();
            for uri in ll_listed(&text) {
                if !dir.has(uri) {
                    let path = format!("{base}{uri}");
                    dir.publish(&path, &node.fetch(&path, false).await?)?;
                }
                dir.listed(uri, now);
            }
            dir.publish(playlist, &body)?;
            dir.sweep(&base, now)?;
            anyhow::Ok(fresh)
        }
        .await;
        match step {
            Ok(true) => say("ready"),
            Ok(false) => {}
            Err(e) => {
                eprintln!("mirror: {e:#}");
                text.clear();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Plain HLS: the playlist every `every` seconds, the new files when it changed.
async fn poll(node: &Node, dir: &mut Dir, playlist: &str, every: f64) -> anyhow::Result<()> {
    let every = Duration::try_from_secs_f64(every).context("--interval")?;
    let base = base_of(playlist);
    let mut last: Option<bytes::Bytes> = None;
    let mut updates = 0u64;
    loop {
        let t0 = Instant::now();
        let step = async {
            let body = node.fetch(playlist, true).await?;
            if last.as_ref() == Some(&body) {
                return anyhow::Ok(());
            }
            let text = std::str::from_utf8(&body).context("the playlist is not UTF-8")?;
            let now = Instant::now();
            for uri in hls_listed(text) {
                if !dir.has(uri) {
                    let path = format!("{base}{uri}");
                    dir.publish(&path, &node.fetch(&path, true).await?)?;
                }
                dir.listed(uri, now);
            }
            dir.publish(playlist, &body)?;
            dir.sweep(&base, now)?;
            if last.is_none() {
                say("ready");
            }
            last = Some(body);
            updates += 1;
            if updates.is_multiple_of(100) {
                say(&format!("updates {updates}"));
            }
            Ok(())
        }
        .await;
        if let Err(e) = step {
            eprintln!("mirror: {e:#}");
        }
        tokio::time::sleep(every.saturating_sub(t0.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_asks_for_the_part_after_the_last() {
        let text = "#EXTM3U\n#EXT-X-PART:DURATION=0.33333,URI=\"007.2.m4s\",INDEPENDENT=YES\n\
                    #EXT-X-PART:DURATION=0.33333,URI=\"8.10.m4s\"\n#EXT-X-PART:URI=\"x.m4s\"\n";
        assert_eq!(last_part(text), Some(("8", 10)));
        assert_eq!(reload_query(text), "?_HLS_msn=8&_HLS_part=11");
        assert_eq!(reload_query("#EXTM3U\n#EXTINF:2.0,\n1.m4s\n"), "");
        assert_eq!(
            reload_query("#EXT-X-PART:URI=\"3.1.m4s\"\r\n"),
            "?_HLS_msn=3&_HLS_part=2"
        );
    }

    #[test]
    fn a_nodes_playlist_as_the_python_read_it() {
        // A node's 360p playlist (parts of 0.333 s) as both mirrors held it in a live
        // check; what the Python's patterns made of it.
        let text = include_str!("reports/testdata/ll-playlist.m3u8");
        assert_eq!(reload_query(text), "?_HLS_msn=28&_HLS_part=1");
        let listed = ll_listed(text);
        assert_eq!(listed.len(), 29);
        assert_eq!(
            listed[..5],
            ["init.mp4", "22.m4s", "23.m4s", "24.m4s", "25.0.m4s"]
        );
        assert_eq!(listed[26..], ["27.6.m4s", "27.m4s", "28.0.m4s"]);
        let plain = [
            "22.m4s", "23.m4s", "24.m4s", "25.m4s", "26.m4s", "27.m4s", "init.mp4",
        ];
        assert_eq!(hls_listed(text), plain);
    }

    #[test]
    fn what_a_playlist_lists() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\n10.m4s\n\
                    #EXT-X-PART:DURATION=0.3,URI=\"11.0.m4s\"\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"11.1.m4s\"\n\n";
        assert_eq!(ll_listed(text), ["init.mp4", "10.m4s", "11.0.m4s"]);
        assert_eq!(hls_listed(text), ["10.m4s", "init.mp4"]);
    }

    #[test]
    fn files_are_renamed_in_and_swept_out() {
        let root = std::env::temp_dir().join(format!("mirror-test-{}", std::process::id()));
        let mut dir = Dir::new(root.clone());
        dir.publish("/live/s/360p/1.m4s", b"one").expect("publish");
        let place = root.join("live/s/360p/1.m4s");
        assert_eq!(std::fs::read(&place).expect("read"), b"one");
        let mode = std::fs::metadata(&place)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(!root.join("live/s/360p/.tmp-1.m4s").exists());
        let then = Instant::now();
        dir.listed("1.m4s", then);
        dir.listed("gone.m4s", then);
        dir.sweep("/live/s/360p/", then + KEEP).expect("sweep");
        assert!(place.exists() && dir.has("1.m4s"));
        dir.sweep("/live/s/360p/", then + KEEP + Duration::from_millis(1))
            .expect("sweep");
        assert!(!place.exists() && !dir.has("1.m4s") && !dir.has("gone.m4s"));
        std::fs::remove_dir_all(&root).expect("clean up");
    }
}
