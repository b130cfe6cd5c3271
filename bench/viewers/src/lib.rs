//! A viewer emulator for the benchmarks in `bench/`: N viewers that each behave like
//! hls.js on a live stream ([`plan`]), paced open loop, over keep-alive HTTP/1.1 or
//! HTTP/2, optionally through TLS and the load balancer (cookies kept per viewer, so the
//! sticky cookie sticks). It reports request latency percentiles per kind (measured from
//! the time each request was due), errors and bytes ([`stats`]).
//!
//! Not part of the product: `sealcast-viewers` is a tool of the benchmarks.

pub mod plan;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use url::Url;

use crate::plan::{Kind, Pick, Request, Viewer};
use crate::stats::Stats;

/// How long after a failed master or playlist request a viewer asks again.
const RETRY: Duration = Duration::from_secs(1);

/// The PEM certificate authority at `path`, for a client to trust.
pub fn read_ca(path: &std::path::Path) -> anyhow::Result<reqwest::Certificate> {
    use anyhow::Context;
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem).context("the CA certificate is not PEM")
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The master playlist.
    pub master: Url,
    /// How many viewers.
    pub viewers: usize,
    /// How long the run lasts; no request is made after it.
    pub duration: Duration,
    /// Viewers start evenly spread over this.
    pub ramp: Duration,
    /// The rendition each viewer watches.
    pub pick: Pick,
}

/// Runs the viewers, each with its own client from `client` (so each keeps its own
/// connections and cookies), and returns what they saw.
pub async fn run(config: &Config, client: impl Fn() -> reqwest::Client) -> Stats {
    let started = Instant::now();
    let end = started + config.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..config.viewers {
        let offset = plan::start_time(i, config.viewers, config.ramp);
        let (client, master, pick) = (client(), config.master.clone(), config.pick.clone());
        tasks.spawn(async move { watch(client, master, pick, started, offset, end).await });
    }
    let mut stats = Stats::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(viewer) = done {
            stats.merge(viewer);
        }
    }
    stats
}

/// What a fetch came back with.
type Outcome = (Request, Result<bytes::Bytes, ()>, Instant);

/// One viewer, from `started + offset` to `end`.
async fn watch(
    client: reqwest::Client,
    master: Url,
    pick: Pick,
    started: Instant,
    offset: Duration,
    end: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let mut viewer = Viewer::new(pick);
    let cookies = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let mut queue: Vec<Request> = vec![viewer.start(master, offset)];
    let mut in_flight = 0usize;
    loop {
        queue.sort_by_key(|r| std::cmp::Reverse(r.due));
        let next_due = queue.last().map(|r| started + r.due);
        if next_due.is_none() && in_flight == 0 {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_due.unwrap_or(end)), if next_due.is_some() => {
                while queue.last().is_some_and(|r| started + r.due <= Instant::now()) {
                    let Some(request) = queue.pop() else { break };
                    if started + request.due >= end {
                        continue;
                    }
                    // Open loop: the next reload is scheduled now, answered or not.
                    queue.extend(viewer.after_issuing(&request));
                    in_flight += 1;
                    tokio::spawn(fetch(client.clone(), Arc::clone(&cookies), request, tx.clone()));
                }
            }
            Some((request, outcome, at)) = rx.recv() => {
                in_flight -= 1;
                let now = at.saturating_duration_since(started);
                let latency = now.saturating_sub(request.due);
                let next = match outcome {
                    Ok(body) => {
                        stats.ok(request.kind, latency, body.len() as u64);
                        let next = match request.kind {
                            Kind::Master => viewer.on_master(&request.url, &body, now),
                            Kind::Playlist => viewer.on_playlist(&body, request.due, now),
                            Kind::Segment => Ok(Vec::new()),
                        };
                        next.unwrap_or_else(|_| retry(&request, now))
                    }
                    Err(()) => {
                        stats.error(request.kind);
                        retry(&request, now)
                    }
                };
                queue.extend(next);
            }
            () = tokio::time::sleep_until(end) => break,
        }
    }
    stats
}

/// A failed master or playlist request is asked again after [`RETRY`]; a segment is not.
fn retry(request: &Request, now: Duration) -> Vec<Request> {
    match request.kind {
        Kind::Segment => Vec::new(),
        Kind::Master | Kind::Playlist => vec![Request {
            due: now + RETRY,
            ..request.clone()
        }],
    }
}

/// Fetches one request, keeping the viewer's cookies, and reports when its body ended.
async fn fetch(
    client: reqwest::Client,
    cookies: Arc<Mutex<HashMap<String, String>>>,
    request: Request,
    done: mpsc::UnboundedSender<Outcome>,
) {
    let mut builder = client.get(request.url.clone());
    {
        let jar = cookies.lock().await;
        if !jar.is_empty() {
            let header: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header(reqwest::header::COOKIE, header.join("; "));
        }
    }
    let outcome = async {
        let response = builder.send().await.map_err(drop)?;
        if !response.status().is_success() {
            return Err(());
        }
        let mut jar = cookies.lock().await;
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = value.to_str().ok().and_then(|v| v.split(';').next());
            if let Some((name, value)) = pair.and_then(|p| p.split_once('=')) {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        drop(jar);
        response.bytes().await.map_err(drop)
    }
    .await;
    let _ = done.send((request, outcome, Instant::now()));
}
