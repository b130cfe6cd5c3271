//! A viewer emulator for the benchmarks in `bench/`: N viewers that each behave like
//! hls.js on a live stream ([`plan`]), paced open loop, over keep-alive HTTP/1.1 or
//! HTTP/2, optionally through TLS and the load balancer (cookies kept per viewer, so the
//! sticky cookie sticks). It reports, per kind of request, the time to first byte and the
//! time to the end of the body, both measured from the time each request was due, errors
//! and bytes ([`stats`]).
//!
//! Two ways to run: a fixed number of viewers for a while ([`run`]), or a ramp that adds
//! viewers step by step and judges each step on its segments' TTFB and errors, stopping at
//! the first step that misses ([`ramp()`], maths in [`mod@ramp`]), with the CPU used by this
//! process, by the processes under test and by each core in every step ([`procstat`]), so
//! that a load generator that ran out of CPU first can be told from a server that did.
//!
//! Not part of the product: `sealcast-viewers` is a tool of the benchmarks.

pub mod plan;
pub mod procstat;
pub mod ramp;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use url::Url;

use crate::plan::{Kind, Pick, Request, Viewer};
use crate::ramp::Verdict;
use crate::stats::{Stats, Summary};

/// How long after a failed master or playlist request a viewer asks again.
const RETRY: Duration = Duration::from_secs(1);

/// Makes each viewer's own HTTP client.
pub type ClientFactory = Arc<dyn Fn() -> reqwest::Client + Send + Sync>;

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
/// connections and cookies), and returns what they saw. Requests still unanswered when the
/// run ends are not counted.
pub async fn run(
    config: &Config,
    client: impl Fn() -> reqwest::Client + Send + Sync + 'static,
) -> Stats {
    let started = Instant::now();
    let end = started + config.duration;
    let book = Arc::new(Book::new(None));
    let client: ClientFactory = Arc::new(client);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..config.viewers {
        let offset = plan::start_time(i, config.viewers, config.ramp);
        let viewer = ViewerRun {
            client: Arc::clone(&client),
            master: config.master.clone(),
            pick: config.pick.clone(),
            started,
            offset,
            end,
            book: Arc::clone(&book),
        };
        tasks.spawn(watch(viewer));
    }
    while tasks.join_next().await.is_some() {}
    book.answered_so_far(0)
}

/// A ramp: viewers added step by step (see [`ramp()`] and [`mod@ramp`]).
#[derive(Debug, Clone)]
pub struct RampConfig {
    /// The master playlist.
    pub master: Url,
    /// The rendition each viewer watches.
    pub pick: Pick,
    /// Cumulative viewers per step ([`ramp::counts`]).
    pub counts: Vec<usize>,
    /// How long each step lasts.
    pub step: Duration,
    /// The viewers a step adds start spread over its first `join`.
    pub join: Duration,
    /// How long after a step's end it is judged (answers to its last requests arrive);
    /// at most the step's length.
    pub settle: Duration,
    /// A step fails when its segments' TTFB p99 reaches this, in milliseconds.
    pub threshold_ms: f64,
    /// Processes whose CPU time each step reports (the servers under test).
    pub watch: Vec<u32>,
}

/// One step of a ramp, as judged.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Its index, from 0.
    pub step: usize,
    /// Viewers watching during it.
    pub viewers: usize,
    /// Of which it added.
    pub added: usize,
    /// When it started, seconds from the start of the ramp.
    pub start_secs: f64,
    /// How it was judged.
    pub verdict: Verdict,
    /// Whether it passed.
    pub passed: bool,
    /// Failed requests of every kind that were due in it.
    pub errors: u64,
    /// The requests that were due in it, per kind (TTFB with the ones still unanswered at
    /// the time they were judged, see [`Stats::pending`]).
    pub kinds: BTreeMap<Kind, Summary>,
    /// How late this process issued the requests due in it (due time to sending), p50 in
    /// milliseconds: a load generator short of CPU issues late.
    pub issue_lag_p50_ms: f64,
    /// Issue lag, p99.
    pub issue_lag_p99_ms: f64,
    /// Issue lag, the worst.
    pub issue_lag_max_ms: f64,
    /// CPU over the step: this process, the watched ones, each core.
    pub cpu: procstat::CpuShares,
}

/// A whole ramp.
#[derive(Debug, Clone, Serialize)]
pub struct RampReport {
    /// The steps run, in order; the last is the first that failed, if one did.
    pub steps: Vec<StepReport>,
    /// Viewers of the last step that passed before the first that did not.
    pub capacity: usize,
    /// Whether a step failed (`false`: the ramp ran out of steps, so `capacity` is a lower
    /// bound).
    pub ended_on_failure: bool,
}

/// Runs a ramp: each step adds its viewers (each with its own client, started when its
/// turn comes), and is judged `settle` after its end on the requests that were due in it;
/// `on_step` sees each judgement as it is made. The ramp stops after the first step that
/// fails, or after the last.
pub async fn ramp(
    config: &RampConfig,
    client: ClientFactory,
    mut on_step: impl FnMut(&StepReport),
) -> RampReport {
    let hz = procstat::clock_ticks();
    let started = Instant::now();
    let steps = config.counts.len();
    let end = started
        + config
            .step
            .saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX));
    let settle = config.settle.min(config.step);
    let book = Arc::new(Book::new(Some(config.step)));
    let mut tasks = tokio::task::JoinSet::new();
    let spawn_step = |tasks: &mut tokio::task::JoinSet<()>, k: usize| {
        let before = if k == 0 { 0 } else { config.counts[k - 1] };
        let added = config.counts[k].saturating_sub(before);
        for i in 0..added {
            let viewer = ViewerRun {
                client: Arc::clone(&client),
                master: config.master.clone(),
                pick: config.pick.clone(),
                started,
                offset: ramp::start_offset(k, i, added, config.step, config.join),
                end,
                book: Arc::clone(&book),
            };
            tasks.spawn(watch(viewer));
        }
        added
    };
    let mut reports = Vec::new();
    let mut added = if steps > 0 {
        spawn_step(&mut tasks, 0)
    } else {
        0
    };
    let mut at_start = procstat::sample(&config.watch);
    for k in 0..steps {
        let step_end = started
            + config
                .step
                .saturating_mul(u32::try_from(k + 1).unwrap_or(u32::MAX));
        tokio::time::sleep_until(step_end).await;
        let at_end = procstat::sample(&config.watch);
        let next_added = if k + 1 < steps {
            spawn_step(&mut tasks, k + 1)
        } else {
            0
        };
        tokio::time::sleep(settle).await;
        let stats = book.take(k, Instant::now().saturating_duration_since(started));
        let mut lags = book.lags(k);
        lags.sort_unstable();
        let kinds = stats.summaries();
        let verdict = ramp::judge(&kinds, config.threshold_ms);
        let report = StepReport {
            step: k,
            viewers: config.counts[k],
            added,
            start_secs: config.step.as_secs_f64() * k as f64,
            verdict,
            passed: verdict.passed(),
            errors: stats.errors(),
            kinds,
            issue_lag_p50_ms: stats::percentile_ms(&lags, 50.0),
            issue_lag_p99_ms: stats::percentile_ms(&lags, 99.0),
            issue_lag_max_ms: stats::percentile_ms(&lags, 100.0),
            cpu: procstat::shares(&at_start, &at_end, hz),
        };
        on_step(&report);
        reports.push(report);
        if !verdict.passed() {
            break;
        }
        at_start = at_end;
        added = next_added;
    }
    tasks.abort_all();
    let judged: Vec<(usize, Verdict)> = reports.iter().map(|r| (r.viewers, r.verdict)).collect();
    let (capacity, ended_on_failure) = ramp::capacity(&judged);
    RampReport {
        steps: reports,
        capacity,
        ended_on_failure,
    }
}

/// What every viewer of a run writes into: outcomes by step (by the time each request was
/// due), issue lags, and the requests still waiting for response headers.
struct Book {
    /// `None`: one step for the whole run.
    step: Option<Duration>,
    inner: SyncMutex<Pages>,
}

#[derive(Default)]
struct Pages {
    steps: Vec<Stats>,
    lags: Vec<Vec<Duration>>,
    waiting: HashMap<u64, (Kind, Duration)>,
    next_id: u64,
}

impl Pages {
    fn stats(&mut self, step: usize) -> &mut Stats {
        if self.steps.len() <= step {
            self.steps.resize_with(step + 1, Stats::default);
        }
        &mut self.steps[step]
    }
}

impl Book {
    fn new(step: Option<Duration>) -> Self {
        Book {
            step,
            inner: SyncMutex::new(Pages::default()),
        }
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, Pages> {
        // A viewer task that panicked while holding the lock left whole entries behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn step_of(&self, due: Duration) -> usize {
        self.step.map_or(0, |len| ramp::step_of(due, len))
    }

    /// A request is sent, `lag` after it was due; its id.
    fn issued(&self, kind: Kind, due: Duration, lag: Duration) -> u64 {
        let step = self.step_of(due);
        let mut p = self.pages();
        if p.lags.len() <= step {
            p.lags.resize_with(step + 1, Vec::new);
        }
        p.lags[step].push(lag);
        let id = p.next_id;
        p.next_id += 1;
        p.waiting.insert(id, (kind, due));
        id
    }

    /// The request's response headers came, or it failed without them.
    fn answered(&self, id: u64) {
        self.pages().waiting.remove(&id);
    }

    /// The request was answered whole: TTFB and end-of-body latency from its due time.
    fn ok(&self, kind: Kind, due: Duration, ttfb: Duration, latency: Duration, bytes: u64) {
        let step = self.step_of(due);
        self.pages().stats(step).ok(kind, ttfb, latency, bytes);
    }

    fn error(&self, kind: Kind, due: Duration, ttfb: Option<Duration>) {
        let step = self.step_of(due);
        self.pages().stats(step).error(kind, ttfb);
    }

    /// Step `step`'s outcomes so far, with its requests still waiting for headers at `now`
    /// (from the start) as pending.
    fn take(&self, step: usize, now: Duration) -> Stats {
        let mut p = self.pages();
        let mut stats = p.stats(step).clone();
        for (kind, due) in p.waiting.values() {
            if self.step_of(*due) == step {
                stats.pending(*kind, now.saturating_sub(*due));
            }
        }
        stats
    }

    /// Step `step`'s outcomes so far, without the requests still waiting.
    fn answered_so_far(&self, step: usize) -> Stats {
        self.pages().stats(step).clone()
    }

    fn lags(&self, step: usize) -> Vec<Duration> {
        self.pages().lags.get(step).cloned().unwrap_or_default()
    }
}

/// One viewer's part in a run.
struct ViewerRun {
    client: ClientFactory,
    master: Url,
    pick: Pick,
    started: Instant,
    /// When it starts, from `started`.
    offset: Duration,
    end: Instant,
    book: Arc<Book>,
}

/// What a fetch came back with: the request and its body (empty for segments and init
/// segments, which are only counted), or the failure.
type Outcome = (Request, Result<bytes::Bytes, ()>, Instant);

/// One viewer, from `started + offset` to `end`.
async fn watch(run: ViewerRun) {
    let ViewerRun {
        client,
        master,
        pick,
        started,
        offset,
        end,
        book,
    } = run;
    tokio::time::sleep_until(started + offset).await;
    // Made when the viewer starts: making thousands at once would hold up the others.
    let client = client();
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
                let now = Instant::now();
                while queue.last().is_some_and(|r| started + r.due <= now) {
                    let Some(request) = queue.pop() else { break };
                    if started + request.due >= end {
                        continue;
                    }
                    // Open loop: the next reload is scheduled now, answered or not.
                    queue.extend(viewer.after_issuing(&request));
                    in_flight += 1;
                    let lag = now.saturating_duration_since(started + request.due);
                    let id = book.issued(request.kind, request.due, lag);
                    let fetching = Fetch {
                        client: client.clone(),
                        cookies: Arc::clone(&cookies),
                        book: Arc::clone(&book),
                        started,
                        id,
                    };
                    tokio::spawn(fetching.get(request, tx.clone()));
                }
            }
            Some((request, outcome, at)) = rx.recv() => {
                in_flight -= 1;
                let now = at.saturating_duration_since(started);
                let next = match outcome {
                    Ok(body) => {
                        let next = match request.kind {
                            Kind::Master => viewer.on_master(&request.url, &body, now),
                            Kind::Playlist => viewer.on_playlist(&body, request.due, now),
                            Kind::Segment | Kind::Init => Ok(Vec::new()),
                        };
                        next.unwrap_or_else(|_| retry(&request, now))
                    }
                    Err(()) => retry(&request, now),
                };
                queue.extend(next);
            }
            () = tokio::time::sleep_until(end) => break,
        }
    }
}

/// A failed master or playlist request is asked again after [`RETRY`]; a segment is not.
fn retry(request: &Request, now: Duration) -> Vec<Request> {
    match request.kind {
        Kind::Segment | Kind::Init => Vec::new(),
        Kind::Master | Kind::Playlist => vec![Request {
            due: now + RETRY,
            ..request.clone()
        }],
    }
}

/// One request in flight.
struct Fetch {
    client: reqwest::Client,
    cookies: Arc<Mutex<HashMap<String, String>>>,
    book: Arc<Book>,
    started: Instant,
    id: u64,
}

impl Fetch {
    /// Fetches `request`, keeping the viewer's cookies; writes its outcome in the book
    /// (so that it counts even after the viewer has stopped) and tells the viewer.
    async fn get(self, request: Request, done: mpsc::UnboundedSender<Outcome>) {
        let due = self.started + request.due;
        let mut headers_at = None;
        let outcome = self.exchange(&request, &mut headers_at).await;
        let at = Instant::now();
        let ttfb = headers_at.map(|h: Instant| h.saturating_duration_since(due));
        match &outcome {
            Ok((_, bytes)) => {
                let latency = at.saturating_duration_since(due);
                let ttfb = ttfb.unwrap_or(latency);
                self.book
                    .ok(request.kind, request.due, ttfb, latency, *bytes);
            }
            Err(()) => self.book.error(request.kind, request.due, ttfb),
        }
        let _ = done.send((request, outcome.map(|(body, _)| body), at));
    }

    /// The exchange itself: the body (empty for a segment or init segment) and its length; `headers_at`
    /// is set when the response headers arrive.
    async fn exchange(
        &self,
        request: &Request,
        headers_at: &mut Option<Instant>,
    ) -> Result<(bytes::Bytes, u64), ()> {
        let mut builder = self.client.get(request.url.clone());
        {
            let jar = self.cookies.lock().await;
            if !jar.is_empty() {
                let header: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
                builder = builder.header(reqwest::header::COOKIE, header.join("; "));
            }
        }
        let sent = builder.send().await;
        *headers_at = sent.is_ok().then(Instant::now);
        self.book.answered(self.id);
        let mut response = sent.map_err(drop)?;
        if !response.status().is_success() {
            return Err(());
        }
        let mut jar = self.cookies.lock().await;
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = value.to_str().ok().and_then(|v| v.split(';').next());
            if let Some((name, value)) = pair.and_then(|p| p.split_once('=')) {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        drop(jar);
        if matches!(request.kind, Kind::Segment | Kind::Init) {
            // Read and counted, not kept.
            let mut bytes = 0u64;
            while let Some(chunk) = response.chunk().await.map_err(drop)? {
                bytes += chunk.len() as u64;
            }
            Ok((bytes::Bytes::new(), bytes))
        } else {
            let body = response.bytes().await.map_err(drop)?;
            let len = body.len() as u64;
            Ok((body, len))
        }
    }
}
