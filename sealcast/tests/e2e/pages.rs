//! The player and the dashboard in headless Chromium (`testkit::browser`), as a viewer and
//! an operator use them:
//!
//! - [`live`]: open `/`, pick the stream, play 5 s, switch to every rung by hand (each
//!   loads fragments of that rung, shows it in the overlay and keeps playing), check the
//!   overlay (serving node, every segment verified), no player errors.
//! - [`recording`]: open `/#vod/STREAM/ID` and play the recording to its end at 4x.
//! - [`thumbnail_listed`]: open `/` and wait for a list entry's thumbnail, shown from the
//!   bytes the page verified itself; [`dashboard_thumbnail`]: the same on the dashboard's
//!   row of a live stream.
//! - [`dashboard`]: open `/dashboard`, a made-up key is refused with a message, the admin
//!   key shows the nodes and the stream with its rungs, and is kept in `sessionStorage`
//!   only.
//!
//! In every one the page may request nothing outside the site's origin and throw nothing
//! uncaught; a failure comes with the player's state and a screenshot, and each success
//! leaves a screenshot in `tests/artifacts/screenshots`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use testkit::browser::{Browser, PageEvents};

/// Where the pages' screenshots are kept after the run.
pub(crate) const ARTIFACTS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/artifacts/screenshots");
/// The most one page check may take.
const DEADLINE: Duration = Duration::from_secs(180);

/// The path of screenshot `name`.
fn screenshot(name: &str) -> PathBuf {
    Path::new(ARTIFACTS).join(name)
}

/// A summary of the player for failure messages (runs in the page).
const PAGE_STATE: &str = r#"
const v = document.querySelector('video');
const s = window.sealcast;
const text = (id) => (document.getElementById(id) || {}).textContent || '';
return {
  url: location.href,
  error: text('error') || text('dashboard-error'),
  video: v && { currentTime: v.currentTime, duration: v.duration, paused: v.paused,
                ended: v.ended, readyState: v.readyState, networkState: v.networkState,
                playbackRate: v.playbackRate },
  errors: s ? s.errors : undefined,
  frags: s ? s.frags : undefined,
  playingLevel: s ? s.playingLevel : undefined,
  overlay: { node: text('ov-node'), rung: text('ov-rung'), verified: text('ov-verified'),
             buffer: text('ov-buffer') },
};
"#;

/// One page check in a fresh browser: `check` runs against `origin`; on failure the
/// error carries the page's state and a screenshot `failure-{mode}.png` is taken.
async fn in_browser<F>(mode: &str, origin: &str, check: F) -> Result<Value>
where
    F: for<'a> FnOnce(
        &'a mut Browser,
        &'a str,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value>> + 'a>>,
{
    let mut browser = Browser::start(1280, 800).await?;
    let outcome = tokio::time::timeout(DEADLINE, check(&mut browser, origin))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the {mode} check took over {DEADLINE:?}")));
    let outcome = match outcome {
        Ok(result) => match stayed_home(browser.events().await?, origin) {
            Ok(()) => Ok(result),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Ok(result) => Ok(result),
        Err(e) => Err(failure_context(&mut browser, mode, e).await),
    };
    browser.quit().await?;
    outcome
}

/// `e` with the page's state, the path of a screenshot `failure-{mode}.png` taken now, and
/// what the page logged.
async fn failure_context(browser: &mut Browser, mode: &str, e: anyhow::Error) -> anyhow::Error {
    let state = browser.execute(PAGE_STATE, Value::Null).await.ok();
    let shot = screenshot(&format!("failure-{mode}.png"));
    let _ = browser.screenshot(&shot).await;
    let notes = browser
        .events()
        .await
        .map(|events| events.notes.join("\n  "))
        .unwrap_or_default();
    e.context(format!(
        "the {mode} page check failed; page state: {}; screenshot {}; the page logged:\n  {notes}",
        state.unwrap_or_default(),
        shot.display()
    ))
}

/// Nothing outside `origin` was requested and nothing was thrown uncaught.
fn stayed_home(events: &PageEvents, origin: &str) -> Result<()> {
    let foreign: Vec<&String> = events
        .requests
        .iter()
        .filter(|url| !same_origin(url, origin))
        .collect();
    anyhow::ensure!(
        foreign.is_empty(),
        "the page requested {foreign:?}, outside {origin}"
    );
    anyhow::ensure!(
        events.errors.is_empty(),
        "uncaught errors in the page: {:?}",
        events.errors
    );
    Ok(())
}

/// Whether `url` is on `origin` (`scheme://host:port`).
fn same_origin(url: &str, origin: &str) -> bool {
    url.strip_prefix(origin)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// Waits in the page until `script` (with `arg`) returns something truthy, stopping early
/// on a foreign request or an uncaught error.
async fn wait(
    browser: &mut Browser,
    origin: &str,
    what: &str,
    script: &str,
    arg: Value,
    secs: u64,
) -> Result<Value> {
    browser
        .wait_for(what, script, arg, Duration::from_secs(secs), |events| {
            stayed_home(events, origin)
        })
        .await
}

/// Waits up to `secs` until the video plays (`currentTime` past 0, not paused); its
/// `currentTime` then.
async fn video_plays(browser: &mut Browser, origin: &str, secs: u64) -> Result<f64> {
    let first = wait(
        browser,
        origin,
        "the video plays (currentTime > 0)",
        &format!(
            "{PLAYER_OK} return v.currentTime > 0 && !v.paused ? {{ t: v.currentTime }} : false;"
        ),
        Value::Null,
        secs,
    )
    .await?;
    first["t"].as_f64().context("no start time")
}

/// Waits up to 60 s until the video, not paused, has played to `to` seconds (`when`
/// prefixes the step's name); its `currentTime` then.
async fn video_reaches(browser: &mut Browser, origin: &str, when: &str, to: f64) -> Result<f64> {
    let reached = wait(
        browser,
        origin,
        &format!("{when}currentTime reaches {to:.1} s"),
        &format!("{PLAYER_OK} return v.currentTime >= arguments[0] && !v.paused ? {{ t: v.currentTime }} : false;"),
        json!(to),
        60,
    )
    .await?;
    reached["t"].as_f64().context("no currentTime")
}

/// Fails with the player's own errors (`window.sealcast.errors`), if any.
async fn no_player_errors(browser: &Browser) -> Result<()> {
    let errors = browser
        .execute(
            "return window.sealcast ? window.sealcast.errors : ['window.sealcast missing']",
            Value::Null,
        )
        .await?;
    anyhow::ensure!(
        errors.as_array().is_some_and(Vec::is_empty),
        "player errors: {errors}"
    );
    Ok(())
}

/// Every predicate below starts with this: a player error ends the wait.
const PLAYER_OK: &str = r#"
const s = window.sealcast;
if (s && s.errors.length) return { failed: JSON.stringify(s.errors) };
const v = document.getElementById('video');
"#;

/// The live player on `origin` for `stream`: what it offered and did.
pub(crate) async fn live(origin: &str, stream: &str, node_prefix: &str) -> Result<Value> {
    let (stream, node_prefix) = (stream.to_owned(), node_prefix.to_owned());
    in_browser("live", origin, move |browser, origin| {
        Box::pin(async move {
            browser.goto(&format!("{origin}/")).await?;
            let button = format!("#streams button[data-stream=\"{stream}\"]");
            wait(
                browser,
                origin,
                &format!("{button} is listed"),
                "return document.querySelector(arguments[0]) !== null",
                json!(button),
                30,
            )
            .await?;
            let element = browser.find(&button).await?;
            browser.click(&element).await?;

            let t0 = video_plays(browser, origin, 45).await?;
            let played = video_reaches(browser, origin, "", t0 + 5.0).await? - t0;

            let levels = browser
                .execute(
                    "return Array.from(document.querySelectorAll('#quality option[data-rung]'), (o) => ({ value: o.value, rung: o.dataset.rung }))",
                    Value::Null,
                )
                .await?;
            let levels: Vec<(String, String)> = levels
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| Some((l["value"].as_str()?.to_owned(), l["rung"].as_str()?.to_owned())))
                .collect();
            anyhow::ensure!(!levels.is_empty(), "the quality menu lists no levels");
            for (value, rung) in &levels {
                let index: i64 = value.parse().with_context(|| format!("level value {value:?}"))?;
                let before = browser
                    .execute("return window.sealcast.frags.byLevel[arguments[0]] || 0", json!(index))
                    .await?;
                // Chosen by hand, as a viewer does: a click on the menu's option.
                let option = browser
                    .find(&format!("#quality option[value=\"{value}\"]"))
                    .await?;
                browser.click(&option).await?;
                let manual = browser
                    .execute(
                        "return window.sealcast.hls ? window.sealcast.hls.manualLevel : null",
                        Value::Null,
                    )
                    .await?;
                if let Some(manual) = manual.as_i64() {
                    anyhow::ensure!(
                        manual == index,
                        "choosing {rung} set hls.manualLevel to {manual}"
                    );
                }
                let shown = wait(
                    browser,
                    origin,
                    &format!("a fragment of {rung} is loaded and #ov-rung shows it"),
                    &format!(
                        "{PLAYER_OK} const a = arguments[0]; \
                         const loaded = s.frags.byLevel[a.index] || 0; \
                         const rung = document.getElementById('ov-rung').textContent.trim(); \
                         return loaded > a.before && rung === a.rung ? {{ t: v.currentTime, loaded }} : false;"
                    ),
                    json!({ "index": index, "before": before, "rung": rung }),
                    30,
                )
                .await?;
                wait(
                    browser,
                    origin,
                    &format!("playback continues on {rung}"),
                    &format!(
                        "{PLAYER_OK} const a = arguments[0]; \
                         const rung = document.getElementById('ov-rung').textContent.trim(); \
                         if (rung !== a.rung) return {{ failed: `#ov-rung switched to ${{rung}}` }}; \
                         return v.currentTime >= a.t + 2 && !v.paused;"
                    ),
                    json!({ "t": shown["t"], "rung": rung }),
                    30,
                )
                .await?;
            }
            let auto = browser.find("#quality option[value=\"-1\"]").await?;
            browser.click(&auto).await?;

            let overlay = browser
                .execute(
                    "return { node: document.getElementById('ov-node').textContent.trim(), \
                     verifiedText: document.getElementById('ov-verified').textContent.trim(), \
                     verifiedWarn: document.getElementById('ov-verified').classList.contains('warn'), \
                     frags: window.sealcast.frags, \
                     glassToGlass: window.sealcast.glassToGlass, \
                     latency: document.getElementById('ov-latency').textContent.trim() }",
                    Value::Null,
                )
                .await?;
            let node = overlay["node"].as_str().unwrap_or_default();
            anyhow::ensure!(
                node.starts_with(&node_prefix)
                    && node[node_prefix.len()..].chars().all(|c| c.is_ascii_digit())
                    && node.len() > node_prefix.len(),
                "#ov-node shows {node:?}, not a {node_prefix}N node"
            );
            let (total, verified) = (&overlay["frags"]["total"], &overlay["frags"]["verified"]);
            anyhow::ensure!(total.as_u64().unwrap_or(0) > 0, "no fragment was counted");
            let text = overlay["verifiedText"].as_str().unwrap_or_default();
            anyhow::ensure!(
                verified == total && overlay["verifiedWarn"] == false && text.starts_with('✔'),
                "not every segment carried x-sealcast-verified: true ({verified}/{total}; the overlay says {text:?})"
            );
            // The source's clock stamp, read back from the frame on screen.
            let glass = overlay["glassToGlass"].as_f64();
            anyhow::ensure!(
                glass.is_some_and(|s| s > 0.0 && s < 30.0)
                    && overlay["latency"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("glass-to-glass")),
                "no glass-to-glass latency from the stamp: {glass:?}, the overlay says {}",
                overlay["latency"]
            );
            no_player_errors(browser).await?;
            browser.screenshot(&screenshot("player-live.png")).await?;
            Ok(json!({
                "advanced_secs": played,
                "levels": levels.iter().map(|(_, rung)| rung).collect::<Vec<_>>(),
                "node": node,
                "verified": format!("{verified}/{total}"),
                "latency": overlay["latency"],
                "glass_to_glass_secs": glass,
            }))
        })
    })
    .await
}

/// How often the page notes the video's media time while a fault happens.
const SAMPLE_MS: u64 = 200;

/// A viewer in Chromium plays `stream` over LL-HLS from `origin`
/// (`/?transport=hls#live/{stream}`: what these faults are about is HTTPS) while `fault`
/// happens (issue 16): once it plays, `fault` runs; afterwards the video must play 6 s
/// more with no fatal player error, nothing uncaught and nothing requested outside the
/// origin. Returns what `fault` returned, the longest stretch, in seconds, in which
/// media time did not advance (a stall the viewer saw) from the fault's start, and what
/// hls.js said about the stream at the end ([`HLS_STATE`]).
pub(crate) async fn plays_through<T>(
    origin: &str,
    stream: &str,
    fault: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, f64, Value)> {
    let mut browser = Browser::start(1280, 800).await?;
    let outcome = async {
        browser
            .goto(&format!("{origin}/?transport=hls#live/{stream}"))
            .await?;
        video_plays(&mut browser, origin, 45).await?;
        // The page notes (wall ms, media time) until the check ends.
        start_timeline(&browser, SAMPLE_MS).await?;
        let result = fault.await?;
        let now = browser
            .execute(
                "return document.getElementById('video').currentTime",
                Value::Null,
            )
            .await?;
        let t = now.as_f64().context("no currentTime")?;
        video_reaches(&mut browser, origin, "after the fault, ", t + 6.0).await?;
        no_player_errors(&browser).await?;
        let state = browser.execute(HLS_STATE, Value::Null).await?;
        let samples = stop_timeline(&browser).await?;
        anyhow::ensure!(samples.len() > 2, "the page noted no timeline: {samples:?}");
        Ok((result, longest_stall(&samples), state))
    }
    .await;
    let outcome = match outcome {
        Ok(done) => stayed_home(browser.events().await?, origin).map(|()| done),
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Ok(done) => Ok(done),
        Err(e) => Err(failure_context(&mut browser, "through-a-fault", e).await),
    };
    browser.quit().await?;
    outcome
}

/// What hls.js says about the level it plays: low-latency mode, the playlist's part target
/// and blocking-reload support, how many parts it lists, its latency estimate, and the
/// glass-to-glass latency the overlay read from the source's clock stamp.
const HLS_STATE: &str = "const hls = window.sealcast.hls; \
    const level = hls && hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0]; \
    const d = level && level.details; \
    return { lowLatencyMode: hls ? hls.lowLatencyMode : null, \
      partTarget: d ? d.partTarget : null, canBlockReload: d ? d.canBlockReload : null, \
      parts: d && d.partList ? d.partList.length : 0, \
      latency: hls ? hls.latency : null, glassToGlass: window.sealcast.glassToGlass };";

/// Makes the page note (wall ms, the video's media time) every `every_ms`, until
/// [`stop_timeline`].
pub(crate) async fn start_timeline(browser: &Browser, every_ms: u64) -> Result<()> {
    browser
        .execute(
            "const v = document.getElementById('video'); window.__timeline = []; \
             window.__sampler = setInterval(() => window.__timeline.push([performance.now(), v.currentTime]), arguments[0]);",
            json!(every_ms),
        )
        .await?;
    Ok(())
}

/// Stops the page's notes ([`start_timeline`]) and returns them, in order.
pub(crate) async fn stop_timeline(browser: &Browser) -> Result<Vec<(f64, f64)>> {
    let timeline = browser
        .execute(
            "clearInterval(window.__sampler); return window.__timeline;",
            Value::Null,
        )
        .await?;
    Ok(timeline
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s[0].as_f64()?, s[1].as_f64()?)))
        .collect())
}

/// The longest wall time, in seconds, over which media time did not advance, from
/// (wall ms, media seconds) samples in order.
pub(crate) fn longest_stall(samples: &[(f64, f64)]) -> f64 {
    let mut longest: f64 = 0.0;
    let mut since = samples.first().map_or(0.0, |s| s.0);
    for pair in samples.windows(2) {
        let ((_, before), (wall, after)) = (pair[0], pair[1]);
        if after > before {
            since = wall;
        } else {
            longest = longest.max((wall - since) / 1000.0);
        }
    }
    longest
}

/// What the video element buffered and what hls.js loaded, for a failure's message.
const MEDIA_STATE: &str = "const v = document.getElementById('video'); \
    const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]); \
    const hls = window.sealcast && window.sealcast.hls; \
    const level = hls && hls.levels[hls.currentLevel]; \
    const frags = level && level.details ? level.details.fragments.slice(-3) \
      .map((f) => [f.sn, f.start, f.duration]) : null; \
    return { t: v.currentTime, duration: v.duration, ended: v.ended, paused: v.paused, \
      readyState: v.readyState, buffered: ranges(v.buffered), \
      level: hls ? hls.currentLevel : null, lastFragments: frags };";

/// A viewer on `origin`'s player for live `stream` over LL-HLS
/// (`/?transport=hls#live/{stream}`; over MoQ a session's end is a retry of its own)
/// watches it end
/// (the publisher stopped: `#EXT-X-ENDLIST`, the video ends), then `comeback` publishes
/// it again: the player, left on the page, starts playing the new session by itself
/// (`window.sealcast.resumed`) and plays 3 s of it. Returns what `comeback` returned.
pub(crate) async fn resumes<T: 'static>(
    origin: &str,
    stream: &str,
    comeback: impl std::future::Future<Output = Result<T>> + 'static,
) -> Result<T> {
    let stream = stream.to_owned();
    let outcome = std::rc::Rc::new(std::cell::RefCell::new(None));
    let slot = std::rc::Rc::clone(&outcome);
    in_browser("resume", origin, move |browser, origin| {
        Box::pin(async move {
            browser
                .goto(&format!("{origin}/?transport=hls#live/{stream}"))
                .await?;
            video_plays(browser, origin, 60).await?;
            wait(
                browser,
                origin,
                "the video ends with the publish",
                &format!("{PLAYER_OK} return v.ended && s.resumed === 0;"),
                Value::Null,
                90,
            )
            .await?;
            let done = comeback.await?;
            *slot.borrow_mut() = Some(done);
            let back = wait(
                browser,
                origin,
                "the player plays the stream again by itself",
                &format!(
                    "{PLAYER_OK} return s.resumed >= 1 && !v.ended && !v.paused && v.readyState >= 2 \
                     ? {{ t: v.currentTime }} : false;"
                ),
                Value::Null,
                60,
            )
            .await?;
            let t = back["t"].as_f64().context("no time")?;
            video_reaches(browser, origin, "", t + 3.0).await?;
            no_player_errors(browser).await?;
            Ok(Value::Null)
        })
    })
    .await?;
    let done = outcome.borrow_mut().take();
    done.context("the stream was not published again")
}

/// The recording `stream`/`id` played to its end at 4x.
pub(crate) async fn recording(origin: &str, stream: &str, id: &str) -> Result<Value> {
    let hash = format!("#vod/{stream}/{id}");
    in_browser("recording", origin, move |browser, origin| {
        Box::pin(async move {
            browser.goto(&format!("{origin}/{hash}")).await?;
            let first = wait(
                browser,
                origin,
                "the recording plays (currentTime > 0)",
                &format!(
                    "{PLAYER_OK} return v.currentTime > 0 && !v.paused && Number.isFinite(v.duration) && v.duration > 0 \
                     ? {{ t: v.currentTime, duration: v.duration }} : false;"
                ),
                Value::Null,
                45,
            )
            .await?;
            let duration = first["duration"].as_f64().context("no duration")?;
            browser
                .execute(
                    "const v = document.getElementById('video'); window.__sealcastEnded = false; \
                     v.addEventListener('ended', () => { window.__sealcastEnded = true; }, { once: true }); \
                     v.playbackRate = 4;",
                    Value::Null,
                )
                .await?;
            // Twice the time it needs at 4x, and some.
            let needed = (duration / 4.0 * 2.0).ceil() as u64 + 20;
            let end = match wait(
                browser,
                origin,
                "the recording ends",
                &format!(
                    "{PLAYER_OK} return (window.__sealcastEnded || v.ended) && v.currentTime >= v.duration - 1 \
                     ? {{ t: v.currentTime, duration: v.duration }} : false;"
                ),
                Value::Null,
                needed.min(150),
            )
            .await
            {
                Ok(end) => end,
                Err(e) => {
                    let state = browser.execute(MEDIA_STATE, Value::Null).await;
                    return Err(e.context(format!("the player's media: {state:?}")));
                }
            };
            no_player_errors(browser).await?;
            let frags = browser
                .execute("return window.sealcast.frags", Value::Null)
                .await?;
            browser.screenshot(&screenshot("player-recording.png")).await?;
            Ok(json!({
                "duration": end["duration"],
                "ended": true,
                "verified": format!("{}/{}", frags["verified"], frags["total"]),
            }))
        })
    })
    .await
}

/// The dashboard with `admin_key`, which must list a broadcast node and `stream` with its
/// rungs; the rungs it shows.
pub(crate) async fn dashboard(origin: &str, stream: &str, admin_key: &str) -> Result<Value> {
    let (stream, admin_key) = (stream.to_owned(), admin_key.to_owned());
    in_browser("dashboard", origin, move |browser, origin| {
        Box::pin(async move {
            browser.goto(&format!("{origin}/dashboard")).await?;
            // A key no one issued is refused with a message.
            let input = browser.find("#api-key").await?;
            browser.fill(&input, &format!("ak_{}", "0".repeat(64))).await?;
            let save = browser.find("#api-key-save").await?;
            browser.click(&save).await?;
            wait(
                browser,
                origin,
                "#dashboard-error reports the wrong key",
                "return document.getElementById('dashboard-error').textContent.trim().length > 0",
                Value::Null,
                15,
            )
            .await?;
            browser.fill(&input, &admin_key).await?;
            browser.click(&save).await?;
            let seen = wait(
                browser,
                origin,
                &format!("#nodes lists a broadcast node and #live lists {stream} with its rungs"),
                r#"
                const name = arguments[0];
                const err = document.getElementById('dashboard-error').textContent.trim();
                if (/not accepted|may not read/.test(err)) return { failed: err };
                const nodes = Array.from(document.querySelectorAll('#nodes tr[data-node]'), (tr) => tr.dataset.node);
                const streams = Array.from(document.querySelectorAll('#live tr[data-stream]'), (tr) => tr.dataset.stream);
                const row = Array.from(document.querySelectorAll('#live tr[data-stream]')).find((tr) => tr.dataset.stream === name);
                const rungs = row ? Array.from(row.querySelectorAll('tr[data-rung]'), (tr) => ({
                  rung: tr.dataset.rung,
                  size: tr.children[1] ? tr.children[1].textContent.trim() : '',
                })) : [];
                const described = rungs.length > 0 && rungs.every((r) => /^[a-z0-9_-]+$/i.test(r.rung) && r.rung !== 'undefined' && /\d+×\d+/.test(r.size));
                return nodes.some((n) => n.startsWith('broadcast')) && streams.includes(name) && described
                  ? { nodes, streams, rungs: rungs.map((r) => r.rung) }
                  : false;
                "#,
                json!(stream),
                30,
            )
            .await?;
            let stored = browser
                .execute("return sessionStorage.getItem('sealcast.apiKey')", Value::Null)
                .await?;
            anyhow::ensure!(
                stored.as_str() == Some(admin_key.as_str()),
                "the API key was not kept in sessionStorage"
            );
            let local = browser
                .execute("return JSON.stringify(localStorage)", Value::Null)
                .await?;
            if local.as_str().is_some_and(|l| l.contains(&admin_key)) {
                bail!("the API key leaked into localStorage");
            }
            browser.screenshot(&screenshot("dashboard.png")).await?;
            Ok(seen)
        })
    })
    .await
}

/// The player page on `origin` until the list entry `key` (`live/{stream}` or
/// `vod/{stream}/{id}`) shows its thumbnail: an image of a blob URL the page made from the
/// bytes it verified (`window.sealcast.thumbnails`), none refused; its size and the counts.
pub(crate) async fn thumbnail_listed(origin: &str, key: &str) -> Result<Value> {
    let key = key.to_owned();
    in_browser("thumbnail", origin, move |browser, origin| {
        Box::pin(async move {
            browser.goto(&format!("{origin}/")).await?;
            let seen = wait(
                browser,
                origin,
                &format!("the entry {key} shows its verified thumbnail"),
                r#"
                const t = window.sealcast && window.sealcast.thumbnails;
                if (t && t.refused) return { failed: JSON.stringify(t.reasons) };
                const li = Array.from(document.querySelectorAll('li[data-key]')).find((l) => l.dataset.key === arguments[0]);
                const img = li && li.querySelector('img.thumb');
                return img && img.dataset.verified === 'true' && img.src.startsWith('blob:') &&
                  img.complete && img.naturalWidth > 0
                  ? { width: img.naturalWidth, height: img.naturalHeight, verified: t.verified, refused: t.refused }
                  : false;
                "#,
                json!(key),
                60,
            )
            .await?;
            let name = format!("thumbnail-{}.png", key.replace('/', "-"));
            browser.screenshot(&screenshot(&name)).await?;
            Ok(seen)
        })
    })
    .await
}

/// The dashboard with `admin_key` until `stream`'s row shows its thumbnail, verified by the
/// page (`window.sealcast.thumbnails`), none refused.
pub(crate) async fn dashboard_thumbnail(
    origin: &str,
    stream: &str,
    admin_key: &str,
) -> Result<Value> {
    let (stream, admin_key) = (stream.to_owned(), admin_key.to_owned());
    in_browser("dashboard-thumbnail", origin, move |browser, origin| {
        Box::pin(async move {
            browser.goto(&format!("{origin}/dashboard")).await?;
            let input = browser.find("#api-key").await?;
            browser.fill(&input, &admin_key).await?;
            let save = browser.find("#api-key-save").await?;
            browser.click(&save).await?;
            let seen = wait(
                browser,
                origin,
                &format!("the dashboard's row of {stream} shows its verified thumbnail"),
                r#"
                const t = window.sealcast && window.sealcast.thumbnails;
                if (t && t.refused) return { failed: JSON.stringify(t.reasons) };
                const row = Array.from(document.querySelectorAll('#live tr[data-stream]')).find((tr) => tr.dataset.stream === arguments[0]);
                const img = row && row.querySelector('img.live-thumb');
                return img && img.dataset.verified === 'true' && img.src.startsWith('blob:') &&
                  img.complete && img.naturalWidth > 0
                  ? { width: img.naturalWidth, verified: t.verified, refused: t.refused }
                  : false;
                "#,
                json!(stream),
                60,
            )
            .await?;
            browser.screenshot(&screenshot("dashboard-thumbnail.png")).await?;
            Ok(seen)
        })
    })
    .await
}

/// The live player on `origin` for `stream` (`/#live/{stream}`, whatever transport it
/// picks) goes `back` seconds behind live through the time-shift window, then `further`
/// seconds behind with the seek bar, then back to live with its button. Behind live is
/// read from the source's clock stamp on the frame shown (`sealcast source`), so the
/// position is the picture's, not the player's word. Every fragment is verified, none
/// refused. Returns the seek's time to playing media, the distances read, and the
/// transports.
pub(crate) async fn time_shift(
    origin: &str,
    stream: &str,
    back: f64,
    further: f64,
) -> Result<Value> {
    let stream = stream.to_owned();
    in_browser("time-shift", origin, move |browser, origin| {
        Box::pin(async move {
            browser.goto(&format!("{origin}/#live/{stream}")).await?;
            video_plays(browser, origin, 60).await?;
            let live = wait(
                browser,
                origin,
                "the seek bar offers the time-shift window",
                &format!(
                    "{PLAYER_OK} const a = arguments[0]; \
                     const bar = document.getElementById('timeshift'); \
                     return !bar.hidden && s.timeshift.available >= a && s.transport \
                       ? {{ transport: s.transport, available: s.timeshift.available, \
                            label: document.getElementById('seek-position').textContent }} : false;"
                ),
                json!(back + further + 4.0),
                90,
            )
            .await?;
            anyhow::ensure!(live["label"] == "Live", "the seek bar says {}", live["label"]);

            // The viewer drags the seek bar `back` seconds to the left and lets go.
            browser
                .execute(
                    "const seek = document.getElementById('seek'); seek.focus(); \
                     seek.value = String(-arguments[0]); \
                     seek.dispatchEvent(new Event('input')); seek.dispatchEvent(new Event('change'));",
                    json!(back),
                )
                .await?;
            let first = behind_live(browser, origin, back, "the seek bar").await?;

            // Further back, within the window already playing.
            browser
                .execute(
                    "const seek = document.getElementById('seek'); seek.focus(); \
                     seek.value = String(-arguments[0]); seek.dispatchEvent(new Event('change'));",
                    json!(further),
                )
                .await?;
            let second = behind_live(browser, origin, further, "a second seek").await?;

            let bar = browser
                .execute(
                    "return { label: document.getElementById('seek-position').textContent, \
                     title: document.getElementById('now-playing').textContent, \
                     button: !document.getElementById('back-to-live').disabled, \
                     value: Number(document.getElementById('seek').value) }",
                    Value::Null,
                )
                .await?;
            anyhow::ensure!(
                bar["label"].as_str().is_some_and(|l| l.starts_with('−'))
                    && bar["title"].as_str().is_some_and(|t| t.ends_with("behind live"))
                    && bar["button"] == true
                    && bar["value"].as_f64().is_some_and(|v| v < 0.0),
                "behind live, the bar shows {bar}"
            );
            browser.screenshot(&screenshot("player-time-shift.png")).await?;

            let button = browser.find("#back-to-live").await?;
            browser.click(&button).await?;
            let returned = wait(
                browser,
                origin,
                "back to live: the picture is a few seconds old again",
                &format!(
                    "{PLAYER_OK} const g = s.glassToGlass; \
                     return !s.timeshift.active && s.timeshift.returned === 1 && !v.paused && \
                       g !== null && g < 8 && s.transport \
                       ? {{ glass: g, transport: s.transport, \
                            label: document.getElementById('seek-position').textContent }} : false;"
                ),
                Value::Null,
                60,
            )
            .await?;
            anyhow::ensure!(returned["label"] == "Live", "back at live, the bar says {}", returned["label"]);
            no_player_errors(browser).await?;
            Ok(json!({
                "first": first,
                "second": second,
                "live_transport": live["transport"],
                "returned": returned,
            }))
        })
    })
    .await
}

/// Waits until the time-shifted video plays `secs` behind live (the stamp on the frame
/// says so, within 6 s), verified, with nothing refused, and plays on 3 s; the seek's
/// time to playing media as the player measured it, and the distance read.
async fn behind_live(browser: &mut Browser, origin: &str, secs: f64, how: &str) -> Result<Value> {
    let at = wait(
        browser,
        origin,
        &format!("after {how}, the picture shown is {secs} s old"),
        &format!(
            "{PLAYER_OK} const a = arguments[0]; const ts = s.timeshift; const g = s.glassToGlass; \
             const f = s.verification; \
             if (f.refusedCount > 0) return {{ failed: JSON.stringify(f.refused) }}; \
             return ts.active && ts.seekMs !== null && !v.paused && g !== null && \
               Math.abs(g - a) < 6 && s.transport === 'll-hls' \
               ? {{ t: v.currentTime, seekMs: ts.seekMs, glass: g, verified: f.verified }} : false;"
        ),
        json!(secs),
        60,
    )
    .await?;
    let t = at["t"].as_f64().context("no time")?;
    video_reaches(
        browser,
        origin,
        &format!("behind live after {how}, "),
        t + 3.0,
    )
    .await?;
    let verified = browser
        .execute(
            "const f = window.sealcast.verification; return { verified: f.verified, refused: f.refusedCount };",
            Value::Null,
        )
        .await?;
    anyhow::ensure!(
        verified["refused"] == 0 && verified["verified"].as_u64().unwrap_or(0) > 0,
        "time-shifted fragments were not all verified: {verified}"
    );
    Ok(at)
}
