// Browser test of the sealcast player and dashboard in a real Chromium (playwright-core).
//
//   BASE_URL=https://localhost:8443 STREAM=demo ADMIN_KEY=ak_... ARTIFACTS=dir MODE=live \
//     node web/tests/browser.mjs
//
// MODE is one of:
//   live       open /, pick STREAM, play 5 s, switch to every rung by hand, check the overlay
//              (node, rung, all segments verified), no player errors, no foreign requests
//   recording  open /#vod/RECORDING (RECORDING=STREAM/ID), play to the end at 4x speed
//   dashboard  open /dashboard, refuse a wrong key, use ADMIN_KEY, find the nodes and STREAM
//
// Progress goes to stderr; on success one JSON line goes to stdout and the exit code is 0;
// on any failure the reason goes to stderr (plus a screenshot in ARTIFACTS) and the exit
// code is 1. Optional: CHROMIUM (browser binary), TIMEOUT_SECS (whole run, default 120),
// NODE_PATTERN (regular expression the serving node must match, default ^broadcast\d+$).

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const started = Date.now();

function log(message) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[browser ${t}s] ${message}\n`);
}

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    fail(`environment variable ${name} is required`);
  }
  return value;
}

function cssString(value) {
  return `"${String(value).replace(/["\\]/g, '\\$&').replace(/\n/g, '\\a ')}"`;
}

// Waits in the page until `fn(arg)` returns something truthy; fails early if the player
// recorded an error (every predicate below returns { failed } for that).
async function waitFor(page, what, fn, arg, timeoutSecs) {
  log(`waiting (≤${timeoutSecs} s) until ${what}`);
  let handle;
  try {
    handle = await page.waitForFunction(fn, arg, { timeout: timeoutSecs * 1000, polling: 200 });
  } catch (err) {
    if (err && err.name === 'TimeoutError') {
      const state = await page.evaluate(pageState).catch(() => null);
      fail(`timed out after ${timeoutSecs} s waiting until ${what}; page state: ${JSON.stringify(state)}`);
    }
    throw err;
  }
  const value = await handle.jsonValue();
  await handle.dispose();
  if (value && value.failed) fail(`while waiting until ${what}: ${value.failed}`);
  return value;
}

// Runs in the page: a summary of the player for failure messages.
function pageState() {
  const v = document.querySelector('video');
  const s = window.sealcast;
  const text = (id) => (document.getElementById(id) || {}).textContent || '';
  return {
    url: location.href,
    error: text('error') || text('dashboard-error'),
    video: v && {
      currentTime: v.currentTime,
      duration: v.duration,
      paused: v.paused,
      ended: v.ended,
      readyState: v.readyState,
      networkState: v.networkState,
      playbackRate: v.playbackRate,
    },
    errors: s ? s.errors : undefined,
    frags: s ? s.frags : undefined,
    playingLevel: s ? s.playingLevel : undefined,
    overlay: {
      node: text('ov-node'),
      rung: text('ov-rung'),
      verified: text('ov-verified'),
      buffer: text('ov-buffer'),
    },
  };
}

async function screenshot(page, artifacts, name) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
  return file;
}

async function playerErrors(page) {
  return page.evaluate(() => (window.sealcast ? window.sealcast.errors : ['window.sealcast missing']));
}

// ---- live ------------------------------------------------------------------------------------

async function runLive(page, cfg) {
  const stream = env('STREAM');
  await page.goto(`${cfg.base}/`, { waitUntil: 'load' });
  const button = `#streams button[data-stream=${cssString(stream)}]`;
  log(`waiting for ${button}`);
  await page.waitForSelector(button, { timeout: 30_000 });
  await page.click(button);

  const first = await waitFor(page, 'the video plays (currentTime > 0)', () => {
    const s = window.sealcast;
    if (s && s.errors.length) return { failed: JSON.stringify(s.errors) };
    const v = document.getElementById('video');
    return v.currentTime > 0 && !v.paused ? { t: v.currentTime } : false;
  }, null, 45);
  const advanced = await waitFor(page, `currentTime reaches ${(first.t + 5).toFixed(1)} s`, (t0) => {
    const s = window.sealcast;
    if (s && s.errors.length) return { failed: JSON.stringify(s.errors) };
    const v = document.getElementById('video');
    return v.currentTime >= t0 + 5 ? { t: v.currentTime } : false;
  }, first.t, 60);
  const advancedSecs = advanced.t - first.t;
  log(`played ${advancedSecs.toFixed(1)} s (from ${first.t.toFixed(1)} s)`);

  const levels = await page.$$eval('#quality option[data-rung]', (options) =>
    options.map((o) => ({ value: o.value, rung: o.dataset.rung })));
  if (levels.length === 0) fail('the quality menu lists no levels');
  log(`levels: ${levels.map((l) => `${l.value}=${l.rung}`).join(', ')}`);

  for (const level of levels) {
    const index = Number(level.value);
    const before = await page.evaluate((i) => window.sealcast.frags.byLevel[i] || 0, index);
    await page.selectOption('#quality', level.value);
    const manual = await page.evaluate(() => window.sealcast.hls && window.sealcast.hls.manualLevel);
    if (manual !== undefined && manual !== index) fail(`choosing ${level.rung} set hls.manualLevel to ${manual}`);
    const shown = await waitFor(page, `a fragment of ${level.rung} is loaded and #ov-rung shows it`, (a) => {
      const s = window.sealcast;
      if (s.errors.length) return { failed: JSON.stringify(s.errors) };
      const loaded = s.frags.byLevel[a.index] || 0;
      const rung = document.getElementById('ov-rung').textContent.trim();
      const v = document.getElementById('video');
      return loaded > a.before && rung === a.rung ? { t: v.currentTime, loaded } : false;
    }, { index, before, rung: level.rung }, 30);
    await waitFor(page, `playback continues on ${level.rung}`, (a) => {
      const s = window.sealcast;
      if (s.errors.length) return { failed: JSON.stringify(s.errors) };
      const v = document.getElementById('video');
      const rung = document.getElementById('ov-rung').textContent.trim();
      if (rung !== a.rung) return { failed: `#ov-rung switched to ${rung}` };
      return v.currentTime >= a.t + 2 && !v.paused;
    }, { t: shown.t, rung: level.rung }, 30);
    log(`rung ${level.rung} ok (${shown.loaded} fragments loaded)`);
  }
  await page.selectOption('#quality', '-1');

  const overlay = await page.evaluate(() => ({
    node: document.getElementById('ov-node').textContent.trim(),
    verifiedText: document.getElementById('ov-verified').textContent.trim(),
    verifiedWarn: document.getElementById('ov-verified').classList.contains('warn'),
    frags: window.sealcast.frags,
    latency: document.getElementById('ov-latency').textContent.trim(),
    buffer: document.getElementById('ov-buffer').textContent.trim(),
  }));
  if (!overlay.node || overlay.node === '—') fail('#ov-node shows no serving node');
  if (!cfg.nodePattern.test(overlay.node)) {
    fail(`#ov-node shows ${JSON.stringify(overlay.node)}, which does not match ${cfg.nodePattern}`);
  }
  const { total, verified } = overlay.frags;
  if (total === 0) fail('no fragment was counted');
  if (verified !== total || overlay.verifiedWarn || !overlay.verifiedText.startsWith('✔')) {
    fail(`not every segment carried x-sealcast-verified: true (${verified}/${total}; overlay says ${JSON.stringify(overlay.verifiedText)})`);
  }
  log(`overlay: node ${overlay.node}, ${overlay.verifiedText}, latency ${overlay.latency}, buffer ${overlay.buffer}`);

  const errors = await playerErrors(page);
  if (errors.length) fail(`player errors: ${JSON.stringify(errors)}`);
  await screenshot(page, cfg.artifacts, 'player-live.png');

  return {
    mode: 'live',
    stream,
    advanced_secs: Number(advancedSecs.toFixed(2)),
    levels: levels.map((l) => l.rung),
    node: overlay.node,
    verified: `${verified}/${total}`,
    latency: overlay.latency,
  };
}

// ---- recording -------------------------------------------------------------------------------

async function runRecording(page, cfg) {
  const recording = env('RECORDING');
  const parts = recording.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) fail(`RECORDING must be STREAM/ID, not ${JSON.stringify(recording)}`);
  const hash = `#vod/${parts.map(encodeURIComponent).join('/')}`;
  await page.goto(`${cfg.base}/${hash}`, { waitUntil: 'load' });

  const first = await waitFor(page, 'the recording plays (currentTime > 0)', () => {
    const s = window.sealcast;
    if (s && s.errors.length) return { failed: JSON.stringify(s.errors) };
    const v = document.getElementById('video');
    return v.currentTime > 0 && !v.paused && Number.isFinite(v.duration) && v.duration > 0
      ? { t: v.currentTime, duration: v.duration }
      : false;
  }, null, 45);
  log(`playing, duration ${first.duration.toFixed(1)} s`);

  await page.evaluate(() => {
    const v = document.getElementById('video');
    window.__sealcastEnded = false;
    v.addEventListener('ended', () => { window.__sealcastEnded = true; }, { once: true });
    v.playbackRate = 4;
  });
  const remaining = Math.max(5, cfg.deadline - (Date.now() - started) / 1000 - 5);
  const needed = Math.ceil(first.duration / 4 * 2 + 20);
  const end = await waitFor(page, 'the recording ends', () => {
    const s = window.sealcast;
    if (s.errors.length) return { failed: JSON.stringify(s.errors) };
    const v = document.getElementById('video');
    return (window.__sealcastEnded || v.ended) && v.currentTime >= v.duration - 1
      ? { t: v.currentTime, duration: v.duration }
      : false;
  }, null, Math.floor(Math.min(needed, remaining)));
  log(`ended at ${end.t.toFixed(1)} of ${end.duration.toFixed(1)} s`);

  const errors = await playerErrors(page);
  if (errors.length) fail(`player errors: ${JSON.stringify(errors)}`);
  const frags = await page.evaluate(() => window.sealcast.frags);
  await screenshot(page, cfg.artifacts, 'player-recording.png');
  return {
    mode: 'recording',
    recording,
    duration: Number(end.duration.toFixed(2)),
    ended: true,
    verified: `${frags.verified}/${frags.total}`,
  };
}

// ---- dashboard -------------------------------------------------------------------------------

async function runDashboard(page, cfg) {
  const stream = env('STREAM');
  const adminKey = env('ADMIN_KEY');
  await page.goto(`${cfg.base}/dashboard`, { waitUntil: 'load' });

  // A key no one issued is refused with a message.
  await page.fill('#api-key', `ak_${'0'.repeat(64)}`);
  await page.click('#api-key-save');
  await waitFor(page, '#dashboard-error reports the wrong key', () =>
    document.getElementById('dashboard-error').textContent.trim().length > 0, null, 15);

  await page.fill('#api-key', adminKey);
  await page.click('#api-key-save');
  const seen = await waitFor(page, `#nodes lists a broadcast node and #live lists ${stream}`, (name) => {
    const err = document.getElementById('dashboard-error').textContent.trim();
    if (/not accepted|may not read/.test(err)) return { failed: err };
    const nodes = Array.from(document.querySelectorAll('#nodes tr[data-node]'), (tr) => tr.dataset.node);
    const streams = Array.from(document.querySelectorAll('#live tr[data-stream]'), (tr) => tr.dataset.stream);
    // The stream's rungs, named, with their resolution (from the public stream list).
    const row = Array.from(document.querySelectorAll('#live tr[data-stream]')).find((tr) => tr.dataset.stream === name);
    const rungs = row ? Array.from(row.querySelectorAll('tr[data-rung]'), (tr) => ({
      rung: tr.dataset.rung,
      size: tr.children[1] ? tr.children[1].textContent.trim() : '',
    })) : [];
    const described = rungs.length > 0 && rungs.every((r) => /^[a-z0-9_-]+$/i.test(r.rung) && r.rung !== 'undefined' && /\d+×\d+/.test(r.size));
    return nodes.some((n) => n.startsWith('broadcast')) && streams.includes(name) && described
      ? { nodes, streams, rungs: rungs.map((r) => r.rung) }
      : false;
  }, stream, 30);
  const stored = await page.evaluate(() => sessionStorage.getItem('sealcast.apiKey'));
  if (stored !== adminKey) fail('the API key was not kept in sessionStorage');
  const local = await page.evaluate(() => JSON.stringify(localStorage));
  if (local.includes(adminKey)) fail('the API key leaked into localStorage');

  await screenshot(page, cfg.artifacts, 'dashboard.png');
  return { mode: 'dashboard', nodes: seen.nodes, streams: seen.streams, rungs: seen.rungs };
}

// ---- main ------------------------------------------------------------------------------------

const MODES = { live: runLive, recording: runRecording, dashboard: runDashboard };

async function main() {
  let browser;
  let page;
  let cfg;
  let timer;
  try {
    const mode = env('MODE');
    if (!MODES[mode]) fail(`MODE must be one of ${Object.keys(MODES).join(', ')}, not ${JSON.stringify(mode)}`);
    const base = new URL(env('BASE_URL'));
    cfg = {
      mode,
      base: base.origin,
      origin: base.origin,
      artifacts: path.resolve(env('ARTIFACTS')),
      deadline: Number(env('TIMEOUT_SECS', '120')),
      nodePattern: new RegExp(env('NODE_PATTERN', '^broadcast\\d+$')),
    };
    if (!(cfg.deadline > 0)) fail('TIMEOUT_SECS must be a positive number');
    await mkdir(cfg.artifacts, { recursive: true });

    const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
    log(`mode ${mode}, base ${cfg.base}, chromium ${executablePath}`);
    browser = await chromium.launch({
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);

    // Anything that must abort the run at once rejects `aborted`.
    let abort;
    const aborted = new Promise((_, reject) => { abort = reject; });
    aborted.catch(() => {});
    const foreign = [];
    page.on('pageerror', (err) => abort(new Failure(`uncaught error in the page: ${err.message}`)));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') log(`console.${msg.type()}: ${msg.text()}`);
    });
    page.on('request', (req) => {
      const url = req.url();
      if (/^(blob|data|about):/.test(url)) return;
      let origin;
      try {
        origin = new URL(url).origin;
      } catch {
        origin = url;
      }
      if (origin !== cfg.origin) {
        foreign.push(url);
        abort(new Failure(`the page requested ${url}, outside ${cfg.origin}`));
      }
    });
    page.on('requestfailed', (req) => {
      const reason = req.failure() ? req.failure().errorText : 'failed';
      // Aborted loads are normal when the player switches rungs or stops.
      if (reason !== 'net::ERR_ABORTED') log(`request failed: ${req.url()} (${reason})`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400) log(`HTTP ${res.status()} for ${res.url()}`);
    });

    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`mode ${mode} did not finish within ${cfg.deadline} s`)), cfg.deadline * 1000);
    });
    const result = await Promise.race([MODES[mode](page, cfg), aborted, timeout]);
    if (foreign.length) fail(`the page made requests outside ${cfg.origin}: ${foreign.join(', ')}`);
    result.elapsed_secs = Number(((Date.now() - started) / 1000).toFixed(1));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    log('passed');
    process.exitCode = 0;
  } catch (err) {
    const message = err instanceof Failure ? err.message : (err && err.stack) || String(err);
    log(`FAILED: ${message}`);
    if (page && cfg) {
      try {
        const state = await page.evaluate(pageState);
        log(`page state: ${JSON.stringify(state)}`);
      } catch {
        // page gone
      }
      try {
        await screenshot(page, cfg.artifacts, `failure-${cfg.mode}.png`);
      } catch {
        // no screenshot then
      }
    }
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    if (browser) {
      // Never hang on a stuck browser.
      const closing = browser.close().catch(() => {});
      await Promise.race([closing, new Promise((r) => setTimeout(r, 10_000).unref())]);
    }
  }
}

// A hard stop in case something ignores the timeouts above.
setTimeout(() => {
  log('FAILED: hard timeout');
  process.exit(1);
}, (Number(process.env.TIMEOUT_SECS) || 120) * 1000 + 30_000).unref();

await main();
process.exit(process.exitCode ?? 1);
