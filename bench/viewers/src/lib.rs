//! A viewer emulator for the benchmarks in `bench/`: N viewers that each behave like
//! hls.js on a live stream, arriving open loop (paced or Poisson, [`arrival`]), over
//! keep-alive HTTP/1.1 or HTTP/2, optionally through TLS and the load balancer (one client
//! per viewer, so one HTTP/2 connection each as a browser has, and cookies kept per
//! viewer, so the sticky cookie sticks). Two players:
//! - plain HLS ([`plan`]): the media playlist once per target duration, every new segment;
//! - LL-HLS ([`ll`]): blocking playlist reloads with `_HLS_msn`/`_HLS_part` and delta
//!   updates, the preload-hinted part asked for as soon as it is hinted, every listed
//!   part, rendition reports read; or, against a server that cannot block (nginx), the
//!   playlist polled every part target. The playlist is read by a bounded parser of the
//!   LL tags ([`llplaylist`]); a buffer model ([`playout`]) turns part arrivals into
//!   stalls, and each part's `EXT-X-PROGRAM-DATE-TIME` against the wall clock at its
//!   arrival gives the viewer's latency behind the live edge.
//!
//! The players are sans-IO state machines (answers in, requests out, time passed in); the
//! driver here ([`run`], [`ramp()`]) does the HTTP and the clock. It reports, per kind of
//! request, the time to first byte and the time to the end of the body, both measured
//! from the time each request was due, errors and bytes ([`stats`]); for LL-HLS also part
//! TTFB (a hinted part's counted from when it existed), blocking-reload wait, latency
//! behind the edge, stalls and requests per second, overall and per viewer ([`tally`]).
//!
//! Two ways to run: a fixed number of viewers for a while ([`run`]), or a ramp that adds
//! viewers step by step and judges each step (segments' TTFB and errors; LL-HLS: parts'
//! TTFB, stalls and errors), stopping at the first step that misses ([`ramp()`], maths in
//! [`mod@ramp`]), with the CPU used by this process, by the processes under test and by
//! each core in every step ([`procstat`]), so that a load generator that ran out of CPU
//! first can be told from a server that did.
//!
//! Not part of the product: `sealcast-viewers` is a tool of the benchmarks.
//!
//! Long because it is the driver of both players: the HTTP clients, the one loop that
//! times every viewer's requests and the per-step report they feed; what a player decides
//! lives in its own module.

pub mod arrival;
pub mod benches;
pub mod docblock;
pub mod driver;
pub mod floor;
pub mod harness;
pub mod live;
pub mod ll;
pub mod llplaylist;
pub mod memory_point;
pub mod mirror;
pub mod plan;
pub mod playout;
pub mod procstat;
pub mod publish_latency;
pub mod ramp;
pub mod reports;
pub mod runs;
pub mod spread;
pub mod staleness;
pub mod stats;
pub mod tally;
pub mod viewer_verify;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch as signal, Mutex};
use tokio::time::Instant;
use url::Url;

use crate::arrival::Arrival;
use crate::ll::{LlEvent, LlMode, LlViewer, ViewerSummary};
use crate::plan::{Kind, Pick, PlanError, Request, Viewer};
use crate::ramp::Verdict;
use crate::stats::{Stats, Summary};
use crate::tally::{LlReport, LlTally};

/// How long after a failed master or playlist request a viewer asks again.
const RETRY: Duration = Duration::from_secs(1);
/// A hinted part's first answer is remembered this long (to time the others' from it).
const FIRST_ANSWERS_KEPT: Duration = Duration::from_secs(60);

/// Makes each viewer's own HTTP client.
pub type ClientFactory = Arc<dyn Fn() -> reqwest::Client + Send + Sync>;

/// The most distinct loopback addresses viewers connect from (`--sources`).
pub const MAX_SOURCES: u32 = 256 * 254;

/// The `n`th loopback address viewers connect from (`--sources`): 127.1.0.1 on, skipping
/// each /24's network and broadcast numbers; wraps after [`MAX_SOURCES`].
pub fn loopback_source(n: u32) -> std::net::Ipv4Addr {
    let n = n % MAX_SOURCES;
    // n / 254 < 256 and n % 254 < 254: both fit a byte.
    std::net::Ipv4Addr::new(127, 1, (n / 254) as u8, (n % 254) as u8 + 1)
}

/// The PEM certificate authority at `path`, for a client to trust.
pub fn read_ca(path: &std::path::Path) -> anyhow::Result<reqwest::Certificate> {
    use anyhow::Context;
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem).context("the CA certificate is not PEM")
}

/// Which player the viewers behave like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// hls.js on plain HLS ([`plan`]).
    Hls,
    /// hls.js in low-latency mode ([`ll`]): blocking reloads and hints, or polling.
    Ll(LlMode),
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
    /// Viewers start over this, as `arrival` schedules.
    pub ramp: Duration,
    /// The rendition each viewer watches.
    pub pick: Pick,
    /// The player they behave like.
    pub mode: Mode,
    /// How their starts are spread over `ramp`.
    pub arrival: Arrival,
}

/// One viewer's outcome in a report (low-latency viewers only).
#[derive(Debug, Clone, Serialize)]
pub struct ViewerReport {
    /// Its number in the run.
    pub viewer: usize,
    /// When it started, seconds from the start of the run.
    pub start_secs: f64,
    /// What it went through.
    #[serde(flatten)]
    pub summary: ViewerSummary,
}

/// What a run saw.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Every request's outcome, by kind.
    pub stats: Stats,
    /// Low-latency viewers: latency, stalls, part TTFB, requests per second.
    pub ll: Option<LlReport>,
    /// Low-latency viewers, each.
    pub viewers: Vec<ViewerReport>,
}

/// Runs the viewers, each with its own client from `client` (so each keeps its own
/// connections and cookies), and returns what they saw. Requests still unanswered when the
/// run ends are not counted.
pub async fn run(
    config: &Config,
    client: impl Fn() -> reqwest::Client + Send + Sync + 'static,
) -> RunReport {
    let started = Instant::now();
    let wall0_ms = wall_ms();
    let end = started + config.duration;
    let book = Arc::new(Book::new(None));
    let client: ClientFactory = Arc::new(client);
    let (stop, stopped) = signal::channel(());
    let mut tasks = tokio::task::JoinSet::new();
    let offsets = config.arrival.offsets(config.viewers, config.ramp, 0);
    for (id, offset) in offsets.into_iter().enumerate() {
        let viewer = ViewerRun {
            client: Arc::clone(&client),
            master: config.master.clone(),
            started,
            wall0_ms,
            offset,
            end,
            book: Arc::clone(&book),
            id,
            stop: stopped.clone(),
        };
        tasks.spawn(watch_as(config.mode, config.pick.clone(), viewer));
    }
    while tasks.join_next().await.is_some() {}
    drop(stop);
    let stats = book.answered_so_far(0);
    let ll = matches!(config.mode, Mode::Ll(_))
        .then(|| book.ll_report(0, &stats, config.duration.as_secs_f64()));
    RunReport {
        stats,
        ll,
        viewers: book.viewers(),
    }
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
    /// The viewers a step adds start over its first `join`, as `arrival` schedules.
    pub join: Duration,
    /// How the starts of a step's viewers are spread over `join`.
    pub arrival: Arrival,
    /// How long after a step's end it is judged (answers to its last requests arrive);
    /// at most the step's length.
    pub settle: Duration,
    /// A step fails when its segments' (low-latency viewers: parts') TTFB p99 reaches
    /// this, in milliseconds (and, low-latency viewers, on a stall).
    pub threshold_ms: f64,
    /// The player the viewers behave like.
    pub mode: Mode,
    /// Processes whose CPU time each step reports (the servers under test).
    pub watch: Vec<u32>,
}

impl RampConfig {
    /// A ramp of `counts` viewers of `master`'s first variant in steps of `step`, with
    /// the defaults of `sealcast-viewers`: plain HLS viewers arriving evenly over a
    /// quarter of each step, judged a second after its end on a TTFB p99 of 250 ms, no
    /// process watched.
    pub fn new(master: Url, counts: Vec<usize>, step: Duration) -> Self {
        RampConfig {
            master,
            pick: Pick::First,
            counts,
            step,
            join: step / 4,
            arrival: Arrival::Paced,
            settle: Duration::from_secs(1).min(step),
            threshold_ms: 250.0,
            mode: Mode::Hls,
            watch: Vec::new(),
        }
    }
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
    /// Low-latency viewers: latency, stalls, part TTFB, requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ll: Option<LlReport>,
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
    /// Low-latency viewers, each, as they were when the ramp ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub viewers: Vec<ViewerReport>,
}

impl RampReport {
    /// Each step's viewers and verdict, in order.
    pub fn verdicts(&self) -> Vec<(usize, Verdict)> {
        self.steps.iter().map(|s| (s.viewers, s.verdict)).collect()
    }
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
    let wall0_ms = wall_ms();
    let steps = config.counts.len();
    let end = started
        + config
            .step
            .saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX));
    let settle = config.settle.min(config.step);
    let book = Arc::new(Book::new(Some(config.step)));
    let (stop, stopped) = signal::channel(());
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id = 0usize;
    let mut spawn_step = |tasks: &mut tokio::task::JoinSet<()>, k: usize| {
        let before = if k == 0 { 0 } else { config.counts[k - 1] };
        let added = config.counts[k].saturating_sub(before);
        let base = config
            .step
            .saturating_mul(u32::try_from(k).unwrap_or(u32::MAX));
        let window = config.join.min(config.step);
        for offset in config.arrival.offsets(added, window, k as u64) {
            let viewer = ViewerRun {
                client: Arc::clone(&client),
                master: config.master.clone(),
                started,
                wall0_ms,
                offset: base + offset,
                end,
                book: Arc::clone(&book),
                id: next_id,
                stop: stopped.clone(),
            };
            next_id += 1;
            tasks.spawn(watch_as(config.mode, config.pick.clone(), viewer));
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
        let (verdict, ll) = match config.mode {
            Mode::Hls => (ramp::judge(&kinds, config.threshold_ms), None),
            Mode::Ll(_) => {
                let ll = book.ll_report(k, &stats, config.step.as_secs_f64());
                (ramp::judge_ll(&kinds, &ll, config.threshold_ms), Some(ll))
            }
        };
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
            ll,
        };
        on_step(&report);
        reports.push(report);
        if !verdict.passed() {
            break;
        }
        at_start = at_end;
        added = next_added;
    }
    // Every viewer writes its summary as it leaves; those not started yet leave at once.
    drop(stop);
    while tasks.join_next().await.is_some() {}
    let mut report = RampReport {
        steps: reports,
        capacity: 0,
        ended_on_failure: false,
        viewers: book.viewers(),
    };
    (report.capacity, report.ended_on_failure) = ramp::capacity(&report.verdicts());
    report
}

/// What every viewer of a run writes into: outcomes by step (by the time each request was
/// due), issue lags, the requests still waiting for response headers, and for low-latency
/// viewers what happened to their playback (by the time it happened), the first answer
/// for each hinted part, and each viewer's summary as it leaves.
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
    ll: Vec<LlTally>,
    /// When the first response headers for each hinted part's path came.
    first_answers: HashMap<String, Instant>,
    viewers: BTreeMap<usize, ViewerReport>,
}

impl Pages {
    fn stats(&mut self, step: usize) -> &mut Stats {
        if self.steps.len() <= step {
            self.steps.resize_with(step + 1, Stats::default);
        }
        &mut self.steps[step]
    }

    fn ll(&mut self, step: usize) -> &mut LlTally {
        if self.ll.len() <= step {
            self.ll.resize_with(step + 1, LlTally::default);
        }
        &mut self.ll[step]
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

    /// The request was answered with its headers at `at`, or failed without them.
    fn answered(&self, id: u64) {
        self.pages().waiting.remove(&id);
    }

    /// The hinted part at `path` had its headers at `at`: when the first viewer had them.
    fn first_answer(&self, path: &str, at: Instant) -> Instant {
        let mut p = self.pages();
        if let Some(first) = p.first_answers.get_mut(path) {
            *first = (*first).min(at);
            return *first;
        }
        if p.first_answers.len() >= 4096 {
            p.first_answers
                .retain(|_, t| at.saturating_duration_since(*t) < FIRST_ANSWERS_KEPT);
        }
        p.first_answers.insert(path.to_owned(), at);
        at
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

    fn refused(&self, kind: Kind, due: Duration) {
        let step = self.step_of(due);
        self.pages().stats(step).refused(kind);
    }

    /// What happened to viewer `viewer`'s playback, in the step in which it happened.
    fn event(&self, viewer: usize, event: &LlEvent) {
        let step = self.step_of(event.at());
        self.pages().ll(step).event(viewer, event);
    }

    fn viewer(&self, report: ViewerReport) {
        self.pages().viewers.insert(report.viewer, report);
    }

    fn viewers(&self) -> Vec<ViewerReport> {
        self.pages().viewers.values().cloned().collect()
    }

    /// Step `step`'s outcomes so far, with its requests still waiting for headers at `now`
    /// (from the start) as pending (held ones without a TTFB sample: waiting is what the
    /// server does with them).
    fn take(&self, step: usize, now: Duration) -> Stats {
        let mut p = self.pages();
        let mut stats = p.stats(step).clone();
        for (kind, due) in p.waiting.values() {
            if self.step_of(*due) == step {
                if kind.held() {
                    stats.waiting(*kind);
                } else {
                    stats.pending(*kind, now.saturating_sub(*due));
                }
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

    /// Step `step`'s low-latency report, its requests being `stats`, over `secs` seconds.
    fn ll_report(&self, step: usize, stats: &Stats, secs: f64) -> LlReport {
        self.pages().ll(step).report(stats, secs)
    }
}

/// The wall clock, in milliseconds since the Unix epoch.
fn wall_ms() -> i64 {
    i64::try_from(domain::time::WallClock.unix_ms()).unwrap_or(i64::MAX)
}

/// One viewer's part in a run.
struct ViewerRun {
    client: ClientFactory,
    master: Url,
    started: Instant,
    /// The wall clock at `started`, ms since the epoch (for latencies behind the edge).
    wall0_ms: i64,
    /// When it starts, from `started`.
    offset: Duration,
    end: Instant,
    book: Arc<Book>,
    /// Its number in the run.
    id: usize,
    /// Changes (or closes) when the run stops early.
    stop: signal::Receiver<()>,
}

/// What the driver needs of an emulated viewer: a sans-IO state machine, answers in and
/// requests out ([`plan::Viewer`], [`ll::LlViewer`]).
trait Emulated: Send + 'static {
    /// `request` was answered with `body` at `at` (the wall clock then `wall_ms`).
    fn on_answer(
        &mut self,
        request: &Request,
        body: &[u8],
        at: Duration,
        wall_ms: i64,
    ) -> Result<Vec<Request>, PlanError>;
    /// `request` failed at `at` (`refused`: a hinted part answered 404).
    fn on_failure(&mut self, request: &Request, refused: bool, at: Duration) -> Vec<Request>;
    fn after_issuing(&self, request: &Request) -> Option<Request>;
    /// When to [`Emulated::tick`] if nothing happens before.
    fn wake_at(&self) -> Option<Duration> {
        None
    }
    fn tick(&mut self, _now: Duration) {}
    fn take_events(&mut self) -> Vec<LlEvent> {
        Vec::new()
    }
    /// The viewer leaves at `now`; its summary, if it keeps one.
    fn finish(&mut self, _now: Duration) -> Option<ViewerSummary> {
        None
    }
}

impl Emulated for Viewer {
    fn on_answer(
        &mut self,
        request: &Request,
        body: &[u8],
        at: Duration,
        _wall_ms: i64,
    ) -> Result<Vec<Request>, PlanError> {
        match request.kind {
            Kind::Master => self.on_master(&request.url, body, at),
            Kind::Playlist => self.on_playlist(body, request.due, at),
            _ => Ok(Vec::new()),
        }
    }

    /// A failed master or playlist request is asked again after [`RETRY`]; media is not.
    fn on_failure(&mut self, request: &Request, _refused: bool, at: Duration) -> Vec<Request> {
        match request.kind {
            Kind::Master | Kind::Playlist => vec![Request {
                due: at + RETRY,
                ..request.clone()
            }],
            _ => Vec::new(),
        }
    }

    fn after_issuing(&self, request: &Request) -> Option<Request> {
        Viewer::after_issuing(self, request)
    }
}

impl Emulated for LlViewer {
    fn on_answer(
        &mut self,
        request: &Request,
        body: &[u8],
        at: Duration,
        wall_ms: i64,
    ) -> Result<Vec<Request>, PlanError> {
        match request.kind {
            Kind::Master => self.on_master(&request.url, body, at),
            Kind::Playlist | Kind::Reload => self.on_playlist(request, body, at),
            Kind::Part | Kind::HintedPart => {
                self.on_part(&request.url, at, wall_ms);
                Ok(Vec::new())
            }
            Kind::Init | Kind::Segment => Ok(Vec::new()),
        }
    }

    fn on_failure(&mut self, request: &Request, refused: bool, at: Duration) -> Vec<Request> {
        LlViewer::on_failure(self, request, refused, at)
    }

    fn after_issuing(&self, request: &Request) -> Option<Request> {
        LlViewer::after_issuing(self, request)
    }

    fn wake_at(&self) -> Option<Duration> {
        LlViewer::wake_at(self)
    }

    fn tick(&mut self, now: Duration) {
        LlViewer::tick(self, now);
    }

    fn take_events(&mut self) -> Vec<LlEvent> {
        LlViewer::take_events(self)
    }

    fn finish(&mut self, now: Duration) -> Option<ViewerSummary> {
        Some(LlViewer::finish(self, now))
    }
}

/// Runs `run` as the player `mode` says.
async fn watch_as(mode: Mode, pick: Pick, run: ViewerRun) {
    match mode {
        Mode::Hls => watch(run, Viewer::new(pick)).await,
        Mode::Ll(ll) => watch(run, LlViewer::new(pick, ll)).await,
    }
}

/// What a fetch came back with: the request and its body (empty for media, which is only
/// counted), or the failure; and when.
type Answer = (Request, Result<bytes::Bytes, Failure>, Instant);

/// Why a request came to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// A hinted part answered 404: the server closed the segment instead (not an error).
    Refused,
    /// Anything else: an error.
    Failed,
}

/// One viewer, from `started + offset` to `end` (or until the run stops).
async fn watch(run: ViewerRun, mut viewer: impl Emulated) {
    let ViewerRun {
        client,
        master,
        started,
        wall0_ms,
        offset,
        end,
        book,
        id,
        mut stop,
    } = run;
    tokio::select! {
        () = tokio::time::sleep_until(started + offset) => {}
        _ = stop.changed() => return,
    }
    // Made when the viewer starts: making thousands at once would hold up the others.
    let client = client();
    let cookies = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    let (tx, mut rx) = mpsc::unbounded_channel::<Answer>();
    let mut queue: Vec<Request> = vec![plan::master(master, offset)];
    let mut in_flight = 0usize;
    loop {
        queue.sort_by_key(|r| std::cmp::Reverse(r.due));
        let next_due = queue.last().map(|r| started + r.due);
        // A tick just after the buffer runs dry tells a stall from a part just in time.
        let wake = viewer
            .wake_at()
            .map(|w| started + w + Duration::from_millis(1));
        if next_due.is_none() && in_flight == 0 && wake.is_none() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some((request, outcome, at)) = rx.recv() => {
                in_flight -= 1;
                let now = at.saturating_duration_since(started);
                let next = match outcome {
                    Ok(body) => {
                        let wall = wall0_ms + i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
                        viewer
                            .on_answer(&request, &body, now, wall)
                            .unwrap_or_else(|_| viewer.on_failure(&request, false, now))
                    }
                    Err(failure) => viewer.on_failure(&request, failure == Failure::Refused, now),
                };
                queue.extend(next);
            }
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
            () = tokio::time::sleep_until(wake.unwrap_or(end)), if wake.is_some() => {
                viewer.tick(Instant::now().saturating_duration_since(started));
            }
            () = tokio::time::sleep_until(end) => break,
        }
        for event in viewer.take_events() {
            book.event(id, &event);
        }
    }
    let now = Instant::now().min(end).saturating_duration_since(started);
    if let Some(summary) = viewer.finish(now) {
        for event in viewer.take_events() {
            book.event(id, &event);
        }
        book.viewer(ViewerReport {
            viewer: id,
            start_secs: offset.as_secs_f64(),
            summary,
        });
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
    async fn get(self, request: Request, done: mpsc::UnboundedSender<Answer>) {
        let due = self.started + request.due;
        let mut headers_at = None;
        let outcome = self.exchange(&request, &mut headers_at).await;
        let at = Instant::now();
        // A hinted part's wait until it existed is the server holding it, by design: its
        // TTFB counts from the first answer any viewer had for it.
        let from = match (request.kind, headers_at, &outcome) {
            (Kind::HintedPart, Some(h), Ok(_)) => {
                due.max(self.book.first_answer(request.url.path(), h))
            }
            _ => due,
        };
        let ttfb = headers_at.map(|h: Instant| h.saturating_duration_since(from));
        match &outcome {
            Ok((_, bytes)) => {
                let latency = at.saturating_duration_since(due);
                let ttfb = ttfb.unwrap_or(latency);
                self.book
                    .ok(request.kind, request.due, ttfb, latency, *bytes);
            }
            Err(Failure::Refused) => self.book.refused(request.kind, request.due),
            Err(Failure::Failed) => self.book.error(request.kind, request.due, ttfb),
        }
        let _ = done.send((request, outcome.map(|(body, _)| body), at));
    }

    /// The exchange itself: the body (empty for media) and its length; `headers_at` is set
    /// when the response headers arrive.
    async fn exchange(
        &self,
        request: &Request,
        headers_at: &mut Option<Instant>,
    ) -> Result<(bytes::Bytes, u64), Failure> {
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
        let mut response = sent.map_err(|_| Failure::Failed)?;
        if !response.status().is_success() {
            let hint_refused = request.kind == Kind::HintedPart
                && response.status() == reqwest::StatusCode::NOT_FOUND;
            return Err(if hint_refused {
                Failure::Refused
            } else {
                Failure::Failed
            });
        }
        let mut jar = self.cookies.lock().await;
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = value.to_str().ok().and_then(|v| v.split(';').next());
            if let Some((name, value)) = pair.and_then(|p| p.split_once('=')) {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        drop(jar);
        if request.kind.media() {
            // Read and counted, not kept.
            let mut bytes = 0u64;
            while let Some(chunk) = response.chunk().await.map_err(|_| Failure::Failed)? {
                bytes += chunk.len() as u64;
            }
            Ok((bytes::Bytes::new(), bytes))
        } else {
            let body = response.bytes().await.map_err(|_| Failure::Failed)?;
            let len = body.len() as u64;
            Ok((body, len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_sources_are_distinct_hosts_on_loopback() {
        let all: std::collections::HashSet<_> = (0..MAX_SOURCES).map(loopback_source).collect();
        assert_eq!(all.len(), MAX_SOURCES as usize);
        assert!(all.iter().all(|a| a.is_loopback()));
        assert!(all.iter().all(|a| !matches!(a.octets()[3], 0 | 255)));
        assert_eq!(loopback_source(0), std::net::Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(loopback_source(254), std::net::Ipv4Addr::new(127, 1, 1, 1));
        assert_eq!(loopback_source(MAX_SOURCES), loopback_source(0));
    }
}
