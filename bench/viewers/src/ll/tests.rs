//! The low-latency viewer against hand-written playlists, and against a simulated live
//! server (a discrete-event simulation: no socket, no clock).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use proptest::prelude::*;

use super::*;

const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n";
const T0: i64 = 1_700_000_000_000;

fn url(s: &str) -> Url {
    Url::parse(s).expect("valid")
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A playlist of `first..first+complete` finished segments of 4 parts of 250 ms (parts
/// listed for all), then `open` parts of the next one, and the hint for the part after.
fn playlist(first: u64, complete: u64, open: u32) -> String {
    let mut text = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.750\n\
         #EXT-X-PART-INF:PART-TARGET=0.25\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
         #EXT-X-PROGRAM-DATE-TIME:{}\n",
        iso(T0 + first as i64 * 1000)
    );
    for s in first..first + complete {
        for i in 0..4 {
            text.push_str(&format!("#EXT-X-PART:DURATION=0.25,URI=\"{s}.{i}.m4s\"\n"));
        }
        text.push_str(&format!("#EXTINF:1.0,\n{s}.m4s\n"));
    }
    let next = first + complete;
    for i in 0..open {
        text.push_str(&format!(
            "#EXT-X-PART:DURATION=0.25,URI=\"{next}.{i}.m4s\"\n"
        ));
    }
    let hint = if open < 4 {
        format!("{next}.{open}")
    } else {
        format!("{}.0", next + 1)
    };
    text.push_str(&format!(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}.m4s\"\n"
    ));
    text.push_str(&format!(
        "#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN={next},LAST-PART={}\n",
        open.max(1) - 1
    ));
    text
}

/// `ms` since the epoch as `EXT-X-PROGRAM-DATE-TIME` writes it (UTC, 2023-11-14 onwards).
fn iso(ms: i64) -> String {
    let secs = (ms - T0).div_euclid(1000);
    let frac = (ms - T0).rem_euclid(1000);
    // T0 is 2023-11-14T22:13:20Z; tests stay within that day.
    let total = 22 * 3600 + 13 * 60 + 20 + secs;
    format!(
        "2023-11-14T{:02}:{:02}:{:02}.{frac:03}Z",
        total / 3600,
        total / 60 % 60,
        total % 60
    )
}

fn joined(mode: LlMode) -> (LlViewer, Request) {
    let master = url("https://lb.test/live/a/master.m3u8");
    let mut v = LlViewer::new(Pick::First, mode);
    let first = v
        .on_master(&master, MASTER.as_bytes(), ms(0))
        .expect("master");
    (v, first[0].clone())
}

/// A blocking viewer that read `playlist(10, 3, 2)`; with the request it answered and the
/// hinted part's.
fn hinted() -> (LlViewer, Request, Request) {
    let (mut v, first) = joined(LlMode::Blocking);
    let out = v
        .on_playlist(&first, playlist(10, 3, 2).as_bytes(), ms(0))
        .expect("playlist");
    let hint = out.into_iter().find(|r| r.kind == Kind::HintedPart);
    (v, first, hint.expect("a hint"))
}

fn described(out: &[Request]) -> Vec<(Kind, String)> {
    out.iter()
        .map(|r| {
            let q = r.url.query().map(|q| format!("?{q}")).unwrap_or_default();
            (
                r.kind,
                format!("{}{q}", r.url.path().rsplit('/').next().unwrap_or("")),
            )
        })
        .collect()
}

#[test]
fn joins_behind_the_edge_asks_every_part_the_hint_and_a_blocking_delta_reload() {
    let (mut v, first) = joined(LlMode::Blocking);
    assert_eq!(first.kind, Kind::Playlist);
    assert_eq!(first.url.query(), None, "the first load is a plain one");
    let out = v
        .on_playlist(&first, playlist(10, 3, 2).as_bytes(), ms(100))
        .expect("playlist");
    // 750 ms hold back: 13.1, 13.0, 12.3 are 750 ms from the end; the last independent
    // part at least that far back is 12.0.
    assert_eq!(
        described(&out),
        [
            (Kind::Init, "init.mp4".to_owned()),
            (Kind::Part, "12.0.m4s".into()),
            (Kind::Part, "12.1.m4s".into()),
            (Kind::Part, "12.2.m4s".into()),
            (Kind::Part, "12.3.m4s".into()),
            (Kind::Part, "13.0.m4s".into()),
            (Kind::Part, "13.1.m4s".into()),
            (Kind::HintedPart, "13.2.m4s".into()),
            (
                Kind::Reload,
                "index.m3u8?_HLS_msn=13&_HLS_part=2&_HLS_skip=YES".into()
            ),
        ]
    );
    assert!(out.iter().all(|r| r.due == ms(100)), "all at once");
    // The reload answers when 13.2 exists: the hinted part is not asked again, the hint
    // moves on, and the segment's end makes the next directive ask past its last part.
    let reload = out.last().expect("reload").clone();
    let out = v
        .on_playlist(&reload, playlist(10, 3, 3).as_bytes(), ms(350))
        .expect("playlist");
    assert_eq!(
        described(&out),
        [
            (Kind::HintedPart, "13.3.m4s".into()),
            (
                Kind::Reload,
                "index.m3u8?_HLS_msn=13&_HLS_part=3&_HLS_skip=YES".into()
            ),
        ]
    );
    let out = v
        .on_playlist(&reload, playlist(11, 3, 0).as_bytes(), ms(600))
        .expect("playlist");
    assert_eq!(
        described(&out),
        [
            (Kind::HintedPart, "14.0.m4s".into()),
            (
                Kind::Reload,
                "index.m3u8?_HLS_msn=13&_HLS_part=4&_HLS_skip=YES".into()
            ),
        ]
    );
    assert_eq!(v.reports().len(), 1);
    assert_eq!(v.reports()[0].last_msn, 14);
}

#[test]
fn a_hint_the_server_never_made_is_forgotten_and_its_404_is_no_failure() {
    let (mut v, first, hinted) = hinted();
    assert_eq!(v.on_failure(&hinted, true, ms(200)), []);
    // The server closed segment 13 after two parts: 13.2 never comes, 14.0 is next.
    let text = playlist(10, 3, 2).replace("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.2.m4s\"\n", "#EXTINF:0.5,\n13.m4s\n#EXT-X-PART:DURATION=0.25,URI=\"14.0.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.1.m4s\"\n");
    let out = v
        .on_playlist(&first, text.as_bytes(), ms(300))
        .expect("playlist");
    let kinds = described(&out);
    assert_eq!(kinds[0], (Kind::Part, "14.0.m4s".into()));
    assert_eq!(kinds[1], (Kind::HintedPart, "14.1.m4s".into()));
    // Everything arrives in time: no stall from the forgotten hint.
    for (i, name) in ["12.0", "12.1", "12.2", "12.3", "13.0", "13.1", "14.0"]
        .iter()
        .enumerate()
    {
        let part = url(&format!("https://lb.test/live/a/360p/{name}.m4s"));
        v.on_part(&part, ms(300 + i as u64), T0);
    }
    let summary = v.finish(ms(1000));
    assert_eq!(
        (summary.stalls, summary.failed, summary.hints_refused),
        (0, 0, 1)
    );
}

#[test]
fn a_refused_hint_that_is_listed_after_all_is_asked_for_again() {
    let (mut v, first, hinted) = hinted();
    // Listed first, then refused: asked for again as a listed part.
    v.on_playlist(&first, playlist(10, 3, 3).as_bytes(), ms(250))
        .expect("playlist");
    let again = v.on_failure(&hinted, true, ms(260));
    assert_eq!(described(&again), [(Kind::Part, "13.2.m4s".into())]);
}

#[test]
fn polling_asks_no_hint_no_directive_and_reloads_every_part_target() {
    let (mut v, first) = joined(LlMode::Poll(None));
    let out = v
        .on_playlist(&first, playlist(10, 3, 2).as_bytes(), ms(100))
        .expect("playlist");
    assert!(out
        .iter()
        .all(|r| r.kind != Kind::HintedPart && r.kind != Kind::Reload));
    let reload = out.last().expect("reload");
    assert_eq!(
        (reload.kind, reload.due, reload.url.query()),
        (Kind::Playlist, ms(250), None)
    );
    // Open loop: the next is scheduled when this one is issued.
    assert_eq!(v.after_issuing(reload).map(|r| r.due), Some(ms(500)));
    let out = v
        .on_playlist(reload, playlist(10, 3, 3).as_bytes(), ms(260))
        .expect("playlist");
    assert_eq!(described(&out), [(Kind::Part, "13.2.m4s".into())]);
    // A fixed interval.
    let (mut v, first) = joined(LlMode::Poll(Some(ms(100))));
    let out = v
        .on_playlist(&first, playlist(10, 3, 2).as_bytes(), ms(0))
        .expect("playlist");
    assert_eq!(out.last().map(|r| r.due), Some(ms(100)));
}

#[test]
fn latency_is_the_wall_clock_at_arrival_against_the_date_time_and_late_parts_stall() {
    let (mut v, first) = joined(LlMode::Blocking);
    v.on_playlist(&first, playlist(10, 3, 2).as_bytes(), ms(0))
        .expect("playlist");
    // The backlog (12.0 to 13.1) arrives: playback starts, nothing sampled.
    for name in ["12.0", "12.1", "12.2", "12.3", "13.0", "13.1"] {
        v.on_part(
            &url(&format!("https://lb.test/live/a/360p/{name}.m4s")),
            ms(50),
            T0,
        );
    }
    let events = v.take_events();
    assert_eq!(events, [LlEvent::Play(PlayEvent::Started { at: ms(50) })]);
    // 13.2 (date-time T0 + 13.5 s) arrives before it is listed, at wall T0 + 13.8 s.
    let hinted = url("https://lb.test/live/a/360p/13.2.m4s");
    v.on_part(&hinted, ms(300), T0 + 13_800);
    assert_eq!(v.take_events(), [], "its date-time is not known yet");
    v.on_playlist(&first, playlist(10, 3, 3).as_bytes(), ms(310))
        .expect("playlist");
    assert_eq!(
        v.take_events(),
        [LlEvent::Latency {
            at: ms(300),
            latency_ms: 300.0
        }]
    );
    // The buffer holds 7 parts (1.75 s) from 50 ms: dry at 1800 ms unless 13.3 comes.
    assert_eq!(v.wake_at(), Some(ms(1800)));
    v.tick(ms(1801));
    assert_eq!(
        v.take_events(),
        [LlEvent::Play(PlayEvent::StallBegan { at: ms(1800) })]
    );
    let summary = v.finish(ms(2000));
    assert_eq!((summary.stalls, summary.stalled_ms), (1, 200.0));
    assert_eq!(summary.latency_last_ms, Some(300.0));
    assert_eq!((summary.parts, summary.hinted_parts), (7, 1));
    assert!(summary.playing);
}

#[test]
fn a_playlist_that_moved_past_unseen_parts_is_a_jump_and_the_next_reload_is_full() {
    let (mut v, first) = joined(LlMode::Blocking);
    v.on_playlist(&first, playlist(10, 3, 2).as_bytes(), ms(0))
        .expect("playlist");
    let out = v
        .on_playlist(&first, playlist(20, 3, 2).as_bytes(), ms(100))
        .expect("playlist");
    // A full playlist (no EXT-X-SKIP) was read: delta again.
    assert!(v.take_events().contains(&LlEvent::Jump { at: ms(100) }));
    let reload = out.last().expect("reload");
    assert!(reload
        .url
        .query()
        .is_some_and(|q| q.ends_with("_HLS_skip=YES")));
    // A delta that skipped past what the viewer knew: the next reload is a full one.
    let delta = playlist(30, 3, 2).replace(
        "#EXT-X-INDEPENDENT-SEGMENTS\n",
        "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n",
    );
    let out = v
        .on_playlist(&first, delta.as_bytes(), ms(200))
        .expect("playlist");
    let reload = out.last().expect("reload");
    assert_eq!(reload.url.query(), Some("_HLS_msn=35&_HLS_part=2"));
}

#[test]
fn an_ended_stream_stops_the_reloads_and_a_playlist_without_parts_is_refused() {
    let (mut v, first) = joined(LlMode::Blocking);
    let ended = playlist(10, 3, 0).replace(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.0.m4s\"\n",
        "#EXT-X-ENDLIST\n",
    );
    let out = v
        .on_playlist(&first, ended.as_bytes(), ms(0))
        .expect("playlist");
    assert!(v.ended());
    assert!(out
        .iter()
        .all(|r| matches!(r.kind, Kind::Part | Kind::Init)));
    let (mut v, first) = joined(LlMode::Blocking);
    let plain = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n1.m4s\n";
    assert_eq!(
        v.on_playlist(&first, plain.as_bytes(), ms(0)),
        Err(PlanError::NotLowLatency)
    );
}

/// A live server in simulated time: parts of 250 ms, 4 to a segment, part `k` complete at
/// `(k + 1) × 250 ms`; a window of three finished segments and the open one; delta updates
/// keep two; blocking reloads and hinted parts held until the part exists.
struct Server;

impl Server {
    const PART_MS: u64 = 250;

    fn parts_at(t: u64) -> u64 {
        t / Self::PART_MS
    }

    fn render(t: u64, skip: bool) -> String {
        let n = Self::parts_at(t);
        let complete = n / 4;
        let first = complete.saturating_sub(3);
        let kept = if skip {
            complete.saturating_sub(2).max(first)
        } else {
            first
        };
        let mut text = playlist(kept, complete - kept, (n % 4) as u32);
        if skip && kept > first {
            text = text
                .replace(
                    &format!("#EXT-X-MEDIA-SEQUENCE:{kept}\n"),
                    &format!("#EXT-X-MEDIA-SEQUENCE:{first}\n"),
                )
                .replace(
                    "#EXT-X-INDEPENDENT-SEGMENTS\n",
                    &format!(
                        "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SKIP:SKIPPED-SEGMENTS={}\n",
                        kept - first
                    ),
                );
        }
        text
    }

    /// When the part `s.i` exists (an index past 3 is the next segment's part 0).
    fn exists_at(s: u64, i: u64) -> u64 {
        (s * 4 + i + 1) * Self::PART_MS
    }

    /// When a request issued at `t` is answered, and the body then.
    fn answer(r: &Request, t: u64, delay: u64) -> (u64, Option<String>) {
        let name = r.url.path().rsplit('/').next().unwrap_or("").to_owned();
        match r.kind {
            Kind::Master => (t + delay, Some(MASTER.into())),
            Kind::Playlist | Kind::Reload => {
                let mut at = t;
                let mut skip = false;
                let mut q: HashMap<String, u64> = HashMap::new();
                for (k, v) in r.url.query_pairs() {
                    if k == "_HLS_skip" {
                        skip = true;
                    } else {
                        q.insert(k.into_owned(), v.parse().expect("number"));
                    }
                }
                if let (Some(msn), Some(part)) = (q.get("_HLS_msn"), q.get("_HLS_part")) {
                    at = at.max(Self::exists_at(*msn, *part));
                }
                let at = at + delay;
                (at, Some(Self::render(at, skip)))
            }
            Kind::Part | Kind::HintedPart => {
                let (s, i) = name.trim_end_matches(".m4s").split_once('.').expect("s.i");
                let ready = Self::exists_at(s.parse().expect("s"), i.parse().expect("i"));
                assert!(
                    r.kind == Kind::HintedPart || ready <= t,
                    "{name} asked before it was listed"
                );
                (t.max(ready) + delay, None)
            }
            Kind::Init | Kind::Segment => (t + delay, None),
        }
    }
}

/// Runs one viewer against [`Server`] from `join` to `until` (ms), each answer late by the
/// next of `delays` (cycled); returns its summary, every part URL asked for, and the
/// latency samples.
fn simulate(
    mode: LlMode,
    join: u64,
    until: u64,
    delays: &[u64],
) -> (ViewerSummary, Vec<String>, Vec<f64>) {
    let master = url("https://lb.test/live/a/master.m3u8");
    let mut v = LlViewer::new(Pick::First, mode);
    // (time, order, request, is an answer).
    let mut queue: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut requests: Vec<(Request, Option<String>)> = Vec::new();
    let mut order = 0;
    let mut asked = Vec::new();
    let mut latencies = Vec::new();
    let mut d = delays.iter().copied().cycle();
    let issue = |r: Request,
                 requests: &mut Vec<(Request, Option<String>)>,
                 queue: &mut BinaryHeap<_>,
                 order: &mut u64| {
        requests.push((r, None));
        *order += 1;
        queue.push(Reverse((
            (requests[requests.len() - 1].0.due.as_millis()) as u64,
            *order,
            requests.len() - 1,
        )));
    };
    issue(
        crate::plan::master(master.clone(), ms(join)),
        &mut requests,
        &mut queue,
        &mut order,
    );
    let mut issued = vec![false; 0];
    while let Some(Reverse((t, _, id))) = queue.pop() {
        if t > until {
            break;
        }
        // The buffer may run dry before this.
        while let Some(w) = v.wake_at() {
            let w = w.as_millis() as u64 + 1;
            if w > t {
                break;
            }
            v.tick(ms(w));
        }
        issued.resize(requests.len(), false);
        let now = ms(t);
        if !issued[id] {
            // Issue it: the answer is scheduled.
            issued[id] = true;
            let r = requests[id].0.clone();
            if matches!(r.kind, Kind::Part | Kind::HintedPart) {
                asked.push(r.url.path().to_owned());
            }
            if let Some(next) = v.after_issuing(&r) {
                issue(next, &mut requests, &mut queue, &mut order);
            }
            let (at, body) = Server::answer(&r, t, d.next().unwrap_or(0));
            requests[id].1 = body;
            order += 1;
            queue.push(Reverse((at, order, id)));
            continue;
        }
        let (r, body) = requests[id].clone();
        let next = match r.kind {
            Kind::Master => v
                .on_master(&master, body.unwrap_or_default().as_bytes(), now)
                .expect("master"),
            Kind::Playlist | Kind::Reload => v
                .on_playlist(&r, body.unwrap_or_default().as_bytes(), now)
                .expect("playlist"),
            Kind::Part | Kind::HintedPart => {
                v.on_part(&r.url, now, T0 + t as i64);
                Vec::new()
            }
            Kind::Init | Kind::Segment => Vec::new(),
        };
        for e in v.take_events() {
            if let LlEvent::Latency { latency_ms, .. } = e {
                latencies.push(latency_ms);
            }
        }
        for n in next {
            issue(n, &mut requests, &mut queue, &mut order);
        }
    }
    (v.finish(ms(until)), asked, latencies)
}

#[test]
fn the_simulated_viewer_follows_the_edge_without_stalls() {
    let (summary, asked, latencies) = simulate(LlMode::Blocking, 5_100, 20_000, &[5]);
    assert_eq!(
        (summary.stalls, summary.failed, summary.jumps),
        (0, 0, 0),
        "{summary:?}"
    );
    // Parts from 16 (the start, 4.0) on, one every 250 ms, to the end: about 60.
    assert!(asked.len() >= 55, "{}", asked.len());
    assert!(summary.hinted_parts >= 50, "{summary:?}");
    // A hinted part arrives 5 ms after it exists: 255 ms after its date-time.
    assert!(latencies.iter().all(|l| *l == 255.0), "{latencies:?}");
}

proptest! {
    /// Whatever the server's answer delays (up to 100 ms, under the 750 ms hold back), a
    /// blocking viewer asks for every part from its start once and only once, never stalls,
    /// and receives each new part at most its part, the delay and one reload late; a
    /// polling viewer asks each part once too.
    #[test]
    fn every_part_once_and_no_stall(delays in prop::collection::vec(0u64..100, 1..40),
                                    join in 4_000u64..6_000, poll in any::<bool>()) {
        let mode = if poll { LlMode::Poll(None) } else { LlMode::Blocking };
        let (summary, asked, latencies) = simulate(mode, join, 15_000, &delays);
        let unique: std::collections::HashSet<&String> = asked.iter().collect();
        prop_assert_eq!(unique.len(), asked.len(), "a part asked twice");
        prop_assert_eq!((summary.stalls, summary.failed, summary.jumps), (0, 0, 0));
        let max_delay = *delays.iter().max().unwrap_or(&0) as f64;
        for l in &latencies {
            prop_assert!(*l >= 250.0);
            let bound = if poll { 250.0 + 250.0 + 2.0 * max_delay } else { 250.0 + 3.0 * max_delay };
            prop_assert!(*l <= bound, "latency {} over {}", l, bound);
        }
        prop_assert!(asked.len() >= 30);
    }
}
