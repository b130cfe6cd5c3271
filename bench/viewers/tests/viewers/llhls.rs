//! The LL-HLS viewers against a real HTTP server on a free port: a live stream of 200 ms
//! parts, four to a segment, with blocking reloads, held preload-hinted parts and delta
//! updates, followed without a stall by blocking viewers and by polling ones; and a ramp
//! that stops at the step in which the stream freezes and the viewers' buffers run dry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::time::Instant;
use viewers::arrival::Arrival;
use viewers::ll::LlMode;
use viewers::plan::{Kind, Pick};
use viewers::ramp::Verdict;
use viewers::{ramp, run, Config, Mode, RampConfig};

const PART_MS: u64 = 200;
/// Parts that exist when the server starts: a window to join.
const BACKLOG: u64 = 16;

struct Live {
    started: Instant,
    /// The wall clock at the start of part 0, ms since the epoch.
    wall0_ms: u64,
    /// Parts that would exist from this many ms after the start come `freeze_ms` late.
    freeze_after_ms: u64,
    freeze_ms: u64,
    held: AtomicU64,
}

impl Live {
    /// When part `k` exists, from the start of the server.
    fn exists_at(&self, k: u64) -> Duration {
        let mut at = ((k + 1).saturating_sub(BACKLOG)) * PART_MS;
        if at >= self.freeze_after_ms {
            at += self.freeze_ms;
        }
        Duration::from_millis(at)
    }

    /// Parts that exist now.
    fn parts_now(&self) -> u64 {
        let now = self.started.elapsed();
        let mut n = BACKLOG;
        while self.exists_at(n) <= now {
            n += 1;
        }
        n
    }

    fn render(&self, skip: bool) -> String {
        let n = self.parts_now();
        let complete = n / 4;
        let first = complete.saturating_sub(3);
        let listed = if skip { first + 1 } else { first };
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=1.6,PART-HOLD-BACK=0.600\n\
             #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"
        );
        if skip {
            text.push_str("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n");
        }
        text.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            iso(self.wall0_ms + listed * 4 * PART_MS)
        ));
        for k in listed * 4..n {
            // Every part independent: a viewer starts exactly three parts from the end,
            // so its buffer is 0.6 to 0.8 s and the ramp below knows when it runs dry.
            let (s, i) = (k / 4, k % 4);
            text.push_str(&format!(
                "#EXT-X-PART:DURATION=0.2,URI=\"{s}.{i}.m4s\",INDEPENDENT=YES\n"
            ));
            if i == 3 {
                text.push_str(&format!("#EXTINF:0.8,\n{s}.m4s\n"));
            }
        }
        text.push_str(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}.{}.m4s\"\n",
            n / 4,
            n % 4
        ));
        text
    }
}

/// `ms` since the epoch as ISO 8601 UTC.
fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

async fn playlist(
    State(live): State<Arc<Live>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<String, StatusCode> {
    let number = |k: &str| {
        q.get(k)
            .map(|v| v.parse::<u64>().map_err(|_| StatusCode::BAD_REQUEST))
    };
    if let Some(msn) = number("_HLS_msn").transpose()? {
        let part = number("_HLS_part").transpose()?.unwrap_or(0);
        let k = msn * 4 + part;
        if k > live.parts_now() + 12 {
            return Err(StatusCode::BAD_REQUEST);
        }
        tokio::time::sleep_until(live.started + live.exists_at(k)).await;
    }
    Ok(live.render(q.contains_key("_HLS_skip")))
}

async fn part(
    State(live): State<Arc<Live>>,
    Path(name): Path<String>,
) -> Result<Vec<u8>, StatusCode> {
    let Some((s, i)) = name.strip_suffix(".m4s").and_then(|n| n.split_once('.')) else {
        return Ok(vec![0u8; 4000]); // a whole segment
    };
    let (s, i): (u64, u64) = match (s.parse(), i.parse()) {
        (Ok(s), Ok(i)) if i < 4 => (s, i),
        _ => return Err(StatusCode::NOT_FOUND),
    };
    let k = s * 4 + i;
    let n = live.parts_now();
    if k > n {
        return Err(StatusCode::NOT_FOUND);
    }
    if k == n {
        // The hinted part: held until it exists.
        live.held.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep_until(live.started + live.exists_at(k)).await;
    }
    Ok(vec![0u8; 2000])
}

async fn serve(freeze_after_ms: u64, freeze_ms: u64) -> (String, Arc<Live>) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let live = Arc::new(Live {
        started: Instant::now(),
        wall0_ms: now_ms - BACKLOG * PART_MS,
        freeze_after_ms,
        freeze_ms,
        held: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/live/a/360p/index.m3u8", get(playlist))
        .route("/live/a/360p/init.mp4", get(|| async { vec![0u8; 700] }))
        .route("/live/a/360p/{name}", get(part))
        .with_state(Arc::clone(&live));
    (crate::support::serve(app).await, live)
}

fn config(master: &str, mode: LlMode) -> Config {
    Config {
        master: master.parse().expect("url"),
        viewers: 4,
        duration: Duration::from_secs(3),
        ramp: Duration::from_millis(500),
        pick: Pick::Named("360p".into()),
        mode: Mode::Ll(mode),
        arrival: Arrival::Poisson { seed: 3 },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_viewers_follow_the_edge_part_by_part() {
    let (master, live) = serve(u64::MAX, 0).await;
    let done = run(&config(&master, LlMode::Blocking), reqwest::Client::new).await;
    let s = done.stats.summaries();
    let ll = done.ll.expect("an LL report");
    assert_eq!(done.stats.errors(), 0, "{s:?}");
    assert_eq!(ll.stalls, 0, "{ll:?}");
    // About five reloads a second each, every one blocking, after the first plain load.
    assert_eq!(s[&Kind::Playlist].ok, 4);
    assert!(s[&Kind::Reload].ok >= 30, "{s:?}");
    assert!(s[&Kind::HintedPart].ok >= 20, "{s:?}");
    assert!(live.held.load(Ordering::Relaxed) >= 20);
    assert_eq!(s[&Kind::Init].ok, 4);
    // A held reload waits about a part; a part comes at once (hinted ones: from the first
    // answer).
    let wait = ll.reload_wait.clone().expect("reload waits");
    assert!(wait.p50_ms > 50.0 && wait.p50_ms < 400.0, "{wait:?}");
    let ttfb = ll.part_ttfb.clone().expect("part TTFBs");
    assert!(ttfb.p99_ms < 150.0, "{ttfb:?}");
    // A part arrives as it is made: a part's length behind its date-time, and a little.
    let latency = ll.latency.clone().expect("latencies");
    assert!(
        latency.p50_ms >= 150.0 && latency.p50_ms < 400.0,
        "{latency:?}"
    );
    assert!(ll.requests_per_sec[&Kind::Reload] >= 10.0, "{ll:?}");
    assert_eq!(done.viewers.len(), 4);
    for v in &done.viewers {
        assert!(v.summary.playing && v.summary.stalls == 0, "{v:?}");
        assert!(v.summary.parts >= 8, "{v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_viewers_ask_no_hint_and_lag_more() {
    let (master, live) = serve(u64::MAX, 0).await;
    let done = run(&config(&master, LlMode::Poll(None)), reqwest::Client::new).await;
    let s = done.stats.summaries();
    let ll = done.ll.expect("an LL report");
    assert_eq!(done.stats.errors(), 0, "{s:?}");
    assert_eq!(ll.stalls, 0, "{ll:?}");
    assert!(!s.contains_key(&Kind::Reload) && !s.contains_key(&Kind::HintedPart));
    assert_eq!(live.held.load(Ordering::Relaxed), 0);
    // One playlist per part target each (open loop): about 5 a second.
    assert!(s[&Kind::Playlist].ok >= 40, "{s:?}");
    assert!(s[&Kind::Part].ok >= 30, "{s:?}");
    let latency = ll.latency.expect("latencies");
    assert!(
        latency.p50_ms >= 200.0 && latency.max_ms < 700.0,
        "{latency:?}"
    );
}

/// Steps of 1 s adding 2 viewers each; the stream freezes for 2 s after its part of 1.6 s:
/// the viewers' buffers (0.6 to 0.8 s) run dry at 2.2 to 2.4 s, in the third step, which
/// fails on the stall, while nothing was slow to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_stops_at_the_step_where_viewers_stall() {
    let (master, _live) = serve(1700, 2000).await;
    let config = RampConfig {
        pick: Pick::Named("360p".into()),
        join: Duration::from_millis(200),
        settle: Duration::from_millis(300),
        mode: Mode::Ll(LlMode::Blocking),
        ..RampConfig::new(
            master.parse().expect("url"),
            viewers::ramp::counts(2, 2, 1.0, 8),
            Duration::from_secs(1),
        )
    };

    let report = ramp(&config, Arc::new(reqwest::Client::new), |_| {}).await;
    assert_eq!(
        report.verdicts(),
        [
            (2, Verdict::Passed),
            (4, Verdict::Passed),
            (6, Verdict::Stalled)
        ],
        "{report:#?}"
    );
    assert_eq!((report.capacity, report.ended_on_failure), (4, true));
    let stalled = report.steps[2].ll.as_ref().expect("LL");
    assert!(stalled.stalled_viewers >= 4, "{stalled:?}");
    // Every viewer started reported as it left (the next step's, started while the third
    // settled, too); the stall still going on counts.
    assert!(report.viewers.len() >= 6, "{report:#?}");
    assert!(
        report.viewers[..4].iter().all(|v| v.summary.stalls >= 1),
        "{report:#?}"
    );
}
