// sealcast web player: lists live streams and recordings, plays one with hls.js (native HLS as
// fallback) and shows which node serves it, the rung, the buffer, the latency and how many
// fragments the player itself verified against the cluster's root key (verify.js: every
// segment, part and init segment is checked before hls.js gets its bytes; a refused one is
// a missing one to hls.js). An ES module (the page loads it with type="module"), no build
// step; every string from the API goes through textContent.

import {
  MODE_INSECURE,
  MODE_NATIVE_HLS,
  ThumbnailLoader,
  VerificationSession,
  groupHex,
  openTrust,
  pinnedFingerprint,
  verifyingLoader,
} from './verify.js';
import { MoqPlayback, moqEndpoint } from './moq-play.js';

(function () {
  const REFRESH_MS = 5000;
  const OVERLAY_MS = 500;
  const RETRY_MS = 3000;
  const MAX_RETRIES = 5;
  const MAX_MEDIA_RECOVERIES = 3;
  const NODE_HEADER = 'x-sealcast-node';
  const VERIFIED_HEADER = 'x-sealcast-verified';

  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const quality = $('quality');
  const overlay = $('overlay');
  const overlayToggle = $('overlay-toggle');
  const errorBox = $('error');
  const title = $('now-playing');
  const playerStatus = $('player-status');
  const placeholder = $('placeholder');
  const streamsList = $('streams');
  const streamsStatus = $('streams-status');
  const recordingsList = $('recordings');
  const recordingsStatus = $('recordings-status');
  const timeshiftBar = $('timeshift');
  const seek = $('seek');
  const seekPosition = $('seek-position');
  const backToLiveButton = $('back-to-live');
  const ov = {
    node: $('ov-node'),
    rung: $('ov-rung'),
    bitrate: $('ov-bitrate'),
    buffer: $('ov-buffer'),
    latency: $('ov-latency'),
    verified: $('ov-verified'),
    verifyMode: $('ov-verify-mode'),
    root: $('ov-root'),
    provenance: $('ov-provenance'),
  };

  // What the browser test (and a curious developer) can read.
  const sealcast = {
    hls: null,
    errors: [],
    selection: null,
    node: '',
    live: false,
    // Rungs whose playlist ended while the stream went on (shed by a struggling ingest),
    // each of which made playback start over on the rungs still listed.
    rungsEnded: [],
    // How often a live stream that ended was started again because it went live again.
    resumed: 0,
    // Fragments loaded for the current selection: all, with x-sealcast-verified: true (the
    // serving node's own word, which nothing shown to the viewer relies on), and per
    // hls.js level index (main fragments only).
    frags: { total: 0, verified: 0, byLevel: {} },
    // What this player verified itself, for the current selection: how (`mode`), how many
    // fragments passed, and the refused ones with their reasons and details (the last 500; all are
    // counted in refusedCount); the root key's fingerprint; milliseconds spent checking;
    // and what the C2PA data in the media said (verify.js C2paLiveValidator): the claim
    // signer of the last init segment it verified, and how many init segments, segments and
    // parts verified, carried none (`unsigned`), were refused (also listed in `refused`,
    // their reason the C2PA status code) or went unchecked (`unchecked`: after a
    // discontinuity, until hls.js loads the rendition's init segment again), and how many
    // init segments' post-quantum co-signatures verified (`cosigned`).
    verification: {
      mode: '',
      verified: 0,
      refused: [],
      refusedCount: 0,
      handed: [],
      fingerprint: '',
      pinned: pinnedFingerprint() !== null,
      timeMs: 0,
      provenance: { signer: '', verified: 0, unsigned: 0, refused: 0, unchecked: 0, cosigned: 0 },
    },
    lastFragLevel: -1,
    playingLevel: -1,
    levels: [],
    // Variants this browser cannot decode (a `src` rung passing the publisher's HEVC, AV1
    // or VP9 through), left out of playback: [{ name, codecs }].
    unplayable: [],
    // Seconds from the making of the frame on screen to now, read from the source's clock
    // stamp when the stream has one (null otherwise).
    glassToGlass: null,
    // Which path plays: 'moq' (Media over QUIC, moq-play.js) or 'll-hls' (hls.js or the
    // browser's own HLS); '' before anything plays. `?transport=moq` or `?transport=hls`
    // in the page's URL forces one; otherwise a live stream plays over MoQ where the
    // browser has WebTransport and the node offers an endpoint, and over LL-HLS when MoQ
    // cannot start. `moq`: the MoQ playback's counts (rendition, groups, objects, refused).
    transport: '',
    moq: null,
    // Time-shift of the live stream picked: how many seconds back it can go now
    // (`available`, from the node's list), whether it plays behind live (`active`, from the
    // stream's time-shift window, over hls.js whatever `transport` was), how far behind
    // (`behind`, seconds), how often the viewer went back and came back to live, and how
    // many milliseconds the last seek took from the request to playing media (`seekMs`).
    timeshift: { available: 0, active: false, behind: 0, entered: 0, returned: 0, seekMs: null },
  };
  window.sealcast = sealcast;

  // The root key and the trust bundle, fetched once per page from its origin.
  const trust = openTrust().then((opened) => {
    const v = sealcast.verification;
    v.fingerprint = opened.fingerprint || '';
    if (opened.failure) v.mode = `cannot verify: ${opened.failure.reason}`;
    else v.mode = opened.mode;
    renderOverlay();
    return opened;
  }, (err) => {
    // Nothing to verify with: every fragment is refused with this reason.
    console.error('sealcast: verification could not start', err);
    sealcast.verification.mode = 'cannot verify: verifier_unavailable';
    return { failure: { reason: 'verifier_unavailable', detail: String(err) }, mode: '' };
  });

  const thumbnails = startThumbnails();

  const lists = { live: [], recordings: [], loaded: false };
  let playback = null; // { key, url, retries, mediaRecoveries, timer }
  let verifying = null; // the VerificationSession of the current hls.js instance
  let moqPlaying = null; // the MoqPlayback of the current selection, if MoQ plays it
  // Whether MoQ played this selection and is being dialled again (a failed dial is then
  // retried, not the end of it).
  let moqRetrying = false;
  let lastMoqRetry = 0; // when a MoQ session last ended and playback was started again

  // ---- formatting -------------------------------------------------------------------------

  function formatBitrate(bps) {
    if (!Number.isFinite(bps) || bps <= 0) return '—';
    if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mb/s`;
    return `${Math.round(bps / 1e3)} kb/s`;
  }

  function formatDuration(secs) {
    if (!Number.isFinite(secs) || secs < 0) return '';
    const s = Math.round(secs);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
  }

  function formatTime(unixSecs) {
    if (!Number.isFinite(unixSecs)) return '';
    return new Date(unixSecs * 1000).toLocaleString(undefined, {
      dateStyle: 'medium',
      timeStyle: 'short',
    });
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // ---- selection <-> URL hash ---------------------------------------------------------------

  function hashOf(sel) {
    if (!sel) return '';
    const enc = encodeURIComponent;
    const base = sel.kind === 'live'
      ? `#live/${enc(sel.stream)}`
      : `#vod/${enc(sel.stream)}/${enc(sel.id)}`;
    // A private stream's link carries its playback token (issue 34).
    return sel.token ? `${base}?token=${enc(sel.token)}` : base;
  }

  function parseHash(hash) {
    let raw = hash.replace(/^#/, '');
    if (!raw) return null;
    // `#live/NAME?token=…`: a private stream's link. The token goes on the master
    // playlist's URL; the server writes it into every URL it hands out after that.
    let token = null;
    const q = raw.indexOf('?');
    if (q >= 0) {
      token = new URLSearchParams(raw.slice(q + 1)).get('token') || null;
      raw = raw.slice(0, q);
    }
    let parts;
    try {
      parts = raw.split('/').map(decodeURIComponent);
    } catch {
      return null;
    }
    if (parts.some((p) => p === '')) return null;
    if (parts[0] === 'live' && parts.length === 2) return { kind: 'live', stream: parts[1], token };
    if (parts[0] === 'vod' && parts.length === 3) {
      return { kind: 'vod', stream: parts[1], id: parts[2], token };
    }
    return null;
  }

  function findLive(name) {
    return lists.live.find((s) => s.name === name) || null;
  }

  function findRecording(stream, id) {
    return lists.recordings.find((r) => r.stream === stream && r.id === id) || null;
  }

  // ---- lists ---------------------------------------------------------------------------------

  // Updates a <ul> of buttons in place (keyed), so a refresh neither steals focus nor makes a
  // screen reader re-read the list.
  function syncList(ul, items, keyOf, fill) {
    const existing = new Map();
    for (const li of Array.from(ul.children)) existing.set(li.dataset.key, li);
    const wanted = items.map((item) => {
      const key = keyOf(item);
      let li = existing.get(key);
      if (li) {
        existing.delete(key);
      } else {
        li = document.createElement('li');
        li.dataset.key = key;
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'entry';
        const heading = document.createElement('span');
        heading.className = 'entry-title';
        const meta = document.createElement('span');
        meta.className = 'entry-meta';
        button.append(heading, meta);
        button.addEventListener('click', onEntryClick);
        li.append(button);
      }
      fill(li.firstElementChild, item);
      return li;
    });
    for (const li of existing.values()) li.remove();
    wanted.forEach((li, i) => {
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    });
    markCurrent();
  }

  function fillLive(button, s) {
    button.dataset.stream = s.name;
    button.dataset.hash = hashOf({ kind: 'live', stream: s.name });
    const [heading, meta] = button.children;
    if (!heading.firstChild) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'LIVE';
      heading.append(badge, document.createTextNode(''));
    }
    setText(heading.lastChild, s.name);
    const top = s.renditions.reduce((a, r) => ((r.height || 0) > (a.height || 0) ? r : a), {});
    const rungs = s.renditions.map((r) => r.name).join(' · ');
    const size = top.width && top.height ? ` — up to ${top.width}×${top.height}` : '';
    setText(meta, `${rungs}${size}`);
    button.setAttribute('aria-label', `Watch ${s.name} live (${s.renditions.length} qualities)`);
    showThumbnail(button, s.thumbnail_url);
  }

  function fillRecording(button, r) {
    button.dataset.stream = r.stream;
    button.dataset.recording = r.id;
    button.dataset.hash = hashOf({ kind: 'vod', stream: r.stream, id: r.id });
    const [heading, meta] = button.children;
    setText(heading, r.stream);
    const parts = [formatTime(r.started_at), formatDuration(r.duration_secs)].filter(Boolean);
    setText(meta, parts.join(' · '));
    button.setAttribute('aria-label', `Play the recording of ${r.stream}, ${parts.join(', ')}`);
    showThumbnail(button, r.thumbnail_url);
  }

  // ---- thumbnails ----------------------------------------------------------------------------

  // A still of each live stream and recording, shown in its list entry only once this page
  // verified it against the root (verify.js, ThumbnailLoader: the same trust as the media);
  // `window.sealcast.thumbnails` counts what verified and what was refused.
  function startThumbnails() {
    const loader = new ThumbnailLoader(trust);
    sealcast.thumbnails = loader.counts;
    return loader;
  }

  // Shows `url`'s thumbnail (an API path, or nothing) at the end of an entry's button, as
  // an <img> of the verified bytes' blob URL; an entry without one shows none.
  function showThumbnail(button, url) {
    const shown = button.querySelector('img.thumb');
    if (typeof url !== 'string' || !url.startsWith('/')) {
      if (shown) shown.remove();
      return;
    }
    thumbnails.load(url).then((blob) => {
      if (!blob) return;
      let img = button.querySelector('img.thumb');
      if (!img) {
        img = document.createElement('img');
        img.className = 'thumb';
        img.alt = '';
        img.decoding = 'async';
        button.append(img);
      }
      if (img.src !== blob) img.src = blob;
      img.dataset.verified = 'true';
    });
  }

  function markCurrent() {
    const current = sealcast.selection ? hashOf(sealcast.selection) : null;
    for (const button of document.querySelectorAll('.entries button')) {
      if (button.dataset.hash === current) button.setAttribute('aria-current', 'true');
      else button.removeAttribute('aria-current');
    }
  }

  function onEntryClick(event) {
    const hash = event.currentTarget.dataset.hash;
    if (location.hash === hash) {
      // Same entry again: start it over (e.g. after an error).
      select(parseHash(hash), true);
    } else {
      location.hash = hash;
    }
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!response.ok) {
      let reason = `${response.status} ${response.statusText}`.trim();
      try {
        const body = await response.json();
        if (body && typeof body.error === 'string') reason = body.error;
      } catch {
        // not JSON: keep the status line
      }
      throw new Error(reason);
    }
    return response.json();
  }

  async function refreshLists() {
    const asked = Date.now();
    const [live, recordings] = await Promise.allSettled([
      getJson('/api/v1/streams'),
      getJson('/api/v1/recordings'),
    ]);

    if (live.status === 'fulfilled' && Array.isArray(live.value)) {
      lists.live = live.value.filter(
        (s) => s && s.live === true && typeof s.name === 'string' &&
          Array.isArray(s.renditions) && s.renditions.length > 0,
      );
      syncList(streamsList, lists.live, (s) => `live/${s.name}`, fillLive);
      setText(streamsStatus, lists.live.length ? '' : 'No live streams right now.');
      renderTimeshift();
    } else {
      const why = live.status === 'rejected' ? live.reason.message : 'unexpected answer';
      setText(streamsStatus, `Could not load live streams (${why}). Retrying…`);
    }

    if (recordings.status === 'fulfilled' && Array.isArray(recordings.value)) {
      lists.recordings = recordings.value.filter(
        (r) => r && typeof r.stream === 'string' && typeof r.id === 'string',
      );
      syncList(recordingsList, lists.recordings, (r) => `vod/${r.stream}/${r.id}`, fillRecording);
      setText(recordingsStatus, lists.recordings.length ? '' : 'No recordings yet.');
    } else {
      const why = recordings.status === 'rejected' ? recordings.reason.message : 'unexpected answer';
      setText(recordingsStatus, `Could not load recordings (${why}). Retrying…`);
    }
    lists.loaded = true;

    // A live stream picked (or linked) before it went live starts as soon as it is listed.
    const sel = sealcast.selection;
    if (sel && sel.kind === 'live' && !playback && findLive(sel.stream)) select(sel, true);
    // A live stream that played to its end and is listed live again, by a list asked for
    // after that end: its publisher came back (a new session), and so does the player.
    if (sel && sel.kind === 'live' && playback && playback.endedAt && asked > playback.endedAt &&
        video.ended && findLive(sel.stream)) {
      sealcast.resumed += 1;
      select(sel, true);
    }
  }

  async function refreshLoop() {
    try {
      await refreshLists();
    } catch (err) {
      console.error('sealcast: list refresh failed', err);
    }
    setTimeout(refreshLoop, REFRESH_MS);
  }

  // ---- playback ------------------------------------------------------------------------------

  function showError(message) {
    setText(errorBox, message);
  }

  function clearError() {
    setText(errorBox, '');
  }

  function resetStats() {
    sealcast.node = '';
    sealcast.live = false;
    sealcast.frags = { total: 0, verified: 0, byLevel: {} };
    const v = sealcast.verification;
    v.verified = 0;
    v.refused = [];
    v.refusedCount = 0;
    v.handed = [];
    v.timeMs = 0;
    v.provenance = { signer: '', verified: 0, unsigned: 0, refused: 0, unchecked: 0, cosigned: 0 };
    sealcast.lastFragLevel = -1;
    sealcast.playingLevel = -1;
    sealcast.levels = [];
    sealcast.unplayable = [];
    sealcast.rungsEnded = [];
  }

  // Drops the variants whose video codec this browser's MediaSource cannot play: the `src`
  // rung carries the publisher's own codec (hvc1, av01, vp09), which many browsers lack;
  // every other rung is H.264. hls.js would also skip them, but only once it failed to
  // append; asking first keeps automatic switching on what plays.
  function dropUnplayable(hls) {
    const ms = window.MediaSource || window.ManagedMediaSource;
    if (!ms || typeof ms.isTypeSupported !== 'function' || typeof hls.removeLevel !== 'function') return;
    for (let i = hls.levels.length - 1; i >= 0 && hls.levels.length > 1; i -= 1) {
      const level = hls.levels[i];
      const codec = level.videoCodec || '';
      if (!codec || ms.isTypeSupported(`video/mp4; codecs="${codec}"`)) continue;
      sealcast.unplayable.push({ name: rungName(level, i), codecs: codec });
      hls.removeLevel(i);
    }
  }

  function resetQuality() {
    quality.replaceChildren(new Option('Auto', '-1', true, true));
    quality.disabled = true;
  }

  function teardownMedia() {
    if (moqPlaying) {
      moqPlaying.close();
      moqPlaying = null;
    }
    sealcast.transport = '';
    sealcast.moq = null;
    if (sealcast.hls) {
      sealcast.hls.destroy();
      sealcast.hls = null;
    }
    if (video.hasAttribute('src')) {
      video.removeAttribute('src');
      video.load();
    }
  }

  function stopPlayback() {
    if (playback) clearTimeout(playback.timer);
    playback = null;
    teardownMedia();
    resetStats();
    resetQuality();
    renderOverlay();
  }

  function select(sel, force) {
    if (!sel) return;
    const key = hashOf(sel);
    if (!force && sealcast.selection && hashOf(sealcast.selection) === key && playback) return;
    if (!force) moqRetrying = false;

    stopPlayback();
    clearError();
    sealcast.selection = sel;
    sealcast.timeshift.active = false;
    sealcast.timeshift.behind = 0;
    markCurrent();
    renderTimeshift();

    if (sel.kind === 'live') {
      setText(title, `${sel.stream} — live`);
      document.title = `${sel.stream} (live) · sealcast`;
      const entry = findLive(sel.stream);
      if (sel.token) {
        // Private streams are not listed: play the link as it is (over MoQ when the
        // relay takes playback tokens, the token in the session's URL). A link with a
        // token to a stream that is listed (public) reads its public broadcast.
        setText(playerStatus, 'Private stream');
        start(`/live/${encodeURIComponent(sel.stream)}/master.m3u8?token=${encodeURIComponent(sel.token)}`, key, verifyAs(sel), sel.stream, entry ? null : sel.token);
        return;
      }
      if (!entry) {
        placeholder.hidden = false;
        setText(placeholder, `“${sel.stream}” is not live right now. It starts here as soon as it goes live.`);
        setText(playerStatus, 'Waiting for the stream to go live…');
        return;
      }
      setText(playerStatus, entry.renditions.map((r) => r.name).join(' · '));
      start(entry.master_url || `/live/${encodeURIComponent(sel.stream)}/master.m3u8`, key, verifyAs(sel), sel.stream);
    } else {
      const entry = findRecording(sel.stream, sel.id);
      setText(title, `${sel.stream} — recording`);
      document.title = `${sel.stream} (recording) · sealcast`;
      setText(playerStatus, entry
        ? [formatTime(entry.started_at), formatDuration(entry.duration_secs)].filter(Boolean).join(' · ')
        : `Recording ${sel.id}`);
      let url = entry && entry.master_url
        ? entry.master_url
        : `/vod/${encodeURIComponent(sel.stream)}/${encodeURIComponent(sel.id)}/master.m3u8`;
      if (sel.token) url = `${url}?token=${encodeURIComponent(sel.token)}`;
      start(url, key, verifyAs(sel));
    }
  }

  // What the verifier takes the playback for (verify.js's playbackOf): the viewer's pick
  // in the page's URL, `#live/NAME` or `#vod/NAME/ID`, not the master URL the server's
  // list offers, nor anything a playlist says. A live stream's statements are judged at
  // the viewer's clock, a recording's at the time they state.
  function verifyAs(sel) {
    const stream = encodeURIComponent(sel.stream);
    return sel.kind === 'live' ? `/live/${stream}/` : `/vod/${stream}/${encodeURIComponent(sel.id)}/`;
  }

  /** `?transport=` of the page's URL: 'moq', 'hls' or 'auto'. */
  function transportWanted() {
    const wanted = new URLSearchParams(location.search).get('transport');
    return wanted === 'moq' || wanted === 'hls' ? wanted : 'auto';
  }

  // `live`: the stream's name, when it is a live stream MoQ may carry; `token`: its
  // playback token, when it is private.
  function start(url, key, verifying, live = null, token = null) {
    placeholder.hidden = true;
    playback = { key, url, verifyAs: verifying, retries: 0, mediaRecoveries: 0, timer: 0, endedAt: 0 };
    const wanted = transportWanted();
    if (live && wanted !== 'hls') {
      const pb = playback;
      startMoq(live, token).then((ok) => {
        if (ok) moqRetrying = false;
        if (ok || playback !== pb) return;
        if (wanted === 'moq') {
          // Forced onto MoQ and it played before (its relay died, the relay it dials now
          // does not carry the stream yet): keep trying, as LL-HLS retries a failed load.
          if (moqRetrying) {
            scheduleRetry(pb);
            return;
          }
          showError('This stream cannot be played over Media over QUIC here (?transport=moq).');
          return;
        }
        startHlsPath(url);
      });
      return;
    }
    startHlsPath(url);
  }

  // Plays `stream` over MoQ (a private one with its `token`); resolves whether it plays
  // (false: fall back to LL-HLS).
  async function startMoq(stream, token = null) {
    const pb = playback;
    const opened = await trust;
    // Nothing to verify with, or a page that is not a secure context: not over MoQ.
    if (!opened.trust || opened.mode === MODE_INSECURE) return false;
    const endpoint = await moqEndpoint();
    if (!endpoint || playback !== pb) return false;
    // A relay that does not take playback tokens carries no private stream.
    if (token && !endpoint.privatePrefix) return false;
    const moq = new MoqPlayback({
      video,
      endpoint,
      stream,
      token,
      trust,
      tally: sealcast.verification,
      playback: pb.verifyAs,
      onEvent: (name, detail) => {
        if (moqPlaying !== moq) return;
        if (name === 'playing') sealcast.live = true;
        if (name === 'switched') sealcast.playingLevel = detail.index;
        if (name === 'ended' && playback === pb) {
          // The session or the track ended: try again from the start (MoQ or LL-HLS).
          moqPlaying = null;
          moqRetrying = true;
          sealcast.errors.push({ source: 'moq', message: (detail && detail.error) || 'ended', at: new Date().toISOString() });
          scheduleRetry(pb);
        }
      },
    });
    moqPlaying = moq;
    sealcast.transport = 'moq';
    sealcast.moq = moq.state;
    try {
      await moq.start();
      if (playback !== pb) return true;
      fillQuality(moq.renditions.map((r, index) => ({ index, name: r.name, width: 0, height: r.height, bitrate: r.bandwidth })));
      sealcast.playingLevel = moq.renditions.findIndex((r) => r.name === moq.state.rendition);
      setText(ov.rung, moq.state.rendition);
      return true;
    } catch (err) {
      console.warn('sealcast: MoQ could not start, playing LL-HLS instead', err);
      sealcast.errors.push({ source: 'moq', message: String(err.message || err), at: new Date().toISOString() });
      if (moqPlaying === moq) {
        moqPlaying = null;
        moq.close();
        sealcast.transport = '';
        sealcast.moq = null;
        if (video.hasAttribute('src')) {
          video.removeAttribute('src');
          video.load();
        }
      }
      return false;
    }
  }

  // Starts the selection again after a MoQ session ended (a relay or edge gone): at once,
  // over MoQ if the endpoint answers, else LL-HLS; a second end within a few seconds waits
  // RETRY_MS first, so a relay that keeps failing is not dialled in a loop.
  function scheduleRetry(pb) {
    clearTimeout(pb.timer);
    const now = Date.now();
    const soon = now - lastMoqRetry > RETRY_MS * 2;
    lastMoqRetry = now;
    pb.timer = setTimeout(() => {
      if (playback === pb && sealcast.selection) select(sealcast.selection, true);
    }, soon ? 0 : RETRY_MS);
  }

  function startHlsPath(url) {
    sealcast.transport = 'll-hls';
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      startHls(url).catch((err) => showError(`The player could not start: ${err.message || err}`));
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      startNative(url);
    } else {
      placeholder.hidden = false;
      setText(placeholder, 'This browser cannot play HLS.');
      showError('This browser cannot play this stream: it supports neither Media Source Extensions (for hls.js) nor native HLS.');
    }
  }

  function tryPlay() {
    const promise = video.play();
    if (promise) {
      promise.catch((err) => {
        if (err && err.name === 'NotAllowedError') {
          setText(playerStatus, 'Press play to start.');
        }
      });
    }
  }

  function header(details, name) {
    if (!details) return null;
    try {
      if (typeof details.getResponseHeader === 'function') return details.getResponseHeader(name);
      if (details.headers && typeof details.headers.get === 'function') return details.headers.get(name);
    } catch {
      // headers not readable (e.g. aborted request)
    }
    return null;
  }

  function noteNode(details) {
    const node = header(details, NODE_HEADER);
    if (node) sealcast.node = node.trim();
  }

  // Rendition name from the level's media playlist URL (…/{rendition}/index.m3u8).
  function rungName(level, index) {
    const url = (level && (level.uri || (Array.isArray(level.url) ? level.url[0] : level.url))) || '';
    const match = /\/([^/?#]+)\/index\.m3u8(?:[?#]|$)/.exec(url);
    if (match) {
      try {
        return decodeURIComponent(match[1]);
      } catch {
        return match[1];
      }
    }
    if (level && level.name && !/^\d+$/.test(level.name)) return level.name;
    if (level && level.height) return `${level.height}p`;
    return `level ${index}`;
  }

  function buildQuality(hls) {
    fillQuality(hls.levels.map((level, index) => ({
      index,
      name: rungName(level, index),
      width: level.width || 0,
      height: level.height || 0,
      bitrate: level.bitrate || 0,
    })));
  }

  // The quality menu over `levels` (`sealcast.levels`: index, name, width, height,
  // bitrate), Auto first and chosen.
  function fillQuality(levels) {
    sealcast.levels = levels;
    const options = [new Option('Auto', '-1', true, true)];
    for (const level of sealcast.levels) {
      const parts = [level.name];
      if (level.width && level.height) parts.push(`${level.width}×${level.height}`);
      if (level.bitrate) parts.push(formatBitrate(level.bitrate));
      const option = new Option(parts.join(' · '), String(level.index));
      option.dataset.rung = level.name;
      options.push(option);
    }
    quality.replaceChildren(...options);
    quality.disabled = sealcast.levels.length === 0;
  }

  // The fields of a fragment hls.js is loading that its signed statement must match:
  // sequence (frag.sn), part index, discontinuity sequence (frag.cc), the playlist's
  // duration (EXTINF as written: hls.js later replaces frag.duration with the media's),
  // the newest discontinuity the playlist lists (`newestDiscontinuity`: the session whose
  // init segment `init.mp4` is), and which numbers may be skipped (`gap`): those the
  // playlist marks EXT-X-GAP, and those whose media this player already holds (verified
  // before): after a seek back into a stretch partly buffered, hls.js loads what is
  // missing and then goes on after what it holds. Not whether the playlist is live: that
  // is the viewer's pick
  // (`playback.verifyAs`), never an unsigned playlist's say.
  function describe(hls, context) {
    const frag = context.frag;
    const part = context.part || null;
    const level = hls && hls.levels && hls.levels[frag.level];
    const details = level && level.details;
    const inf = frag.tagList && frag.tagList.find((tag) => tag[0] === 'INF');
    return {
      sequence: frag.sn === 'initSegment' ? null : frag.sn,
      part: part ? part.index : null,
      discontinuity: frag.cc,
      // The newest publish session's: the one `init.mp4` is of (see verify.js).
      newestDiscontinuity: details && Number.isFinite(details.endCC) ? details.endCC : null,
      duration: part ? part.duration : inf ? parseFloat(inf[1]) : frag.duration,
      gap: (sn) => {
        const at = details ? details.fragments[sn - details.startSN] : null;
        if (!at || at.sn !== sn) return false;
        return Boolean(at.gap) || isBuffered(at.start + at.duration / 2);
      },
    };
  }

  // Whether media time `t` is in the video's buffer.
  function isBuffered(t) {
    if (!Number.isFinite(t)) return false;
    const ranges = video.buffered;
    for (let i = 0; i < ranges.length; i += 1) {
      if (ranges.start(i) <= t && t < ranges.end(i)) return true;
    }
    return false;
  }

  async function startHls(url) {
    const Hls = window.Hls;
    const pb = playback;
    const opened = await trust;
    if (playback !== pb) return;
    // Low-latency mode: parts, blocking playlist reloads and preload hints when the
    // playlist offers them, with the live edge about PART-HOLD-BACK behind; plain HLS
    // playlists play as before. hls.js starts at a keyframe, which is up to a segment
    // further back than PART-HOLD-BACK, and its own catch-up (a faster playback rate)
    // acts only with more than a second buffered ahead, which a latency target of a
    // second never has: it settled a quarter of a second or more behind its target.
    // `steerLatency` below does the catching up instead, so hls.js's is off (rate 1).
    // Its lookup tolerance (0.25 s by default) is longer than the short last part a
    // segment may end with (0.2 s of 0.3 s parts at 30 fps), and made it skip that part,
    // stall on the hole and then stay a second further back; 0.05 s is below any part the
    // ingest cuts.
    const config = {
      backBufferLength: 30,
      lowLatencyMode: true,
      maxLiveSyncPlaybackRate: 1,
      maxFragLookUpTolerance: 0.05,
    };
    if (pb.timeshift !== undefined) {
      // Behind live in the time-shift window: whole segments, no latency to steer, from the
      // position asked for (within the window's first playlist, which hls.js starts at 0).
      config.lowLatencyMode = false;
      config.startPosition = pb.timeshift;
    }
    let hls = null;
    verifying = null;
    if (opened.mode !== MODE_INSECURE) {
      // Every fragment through the verifier (a page without a usable root key refuses all).
      verifying = new VerificationSession(trust, sealcast.verification, pb.verifyAs);
      config.fLoader = verifyingLoader(Hls.DefaultConfig.loader, verifying, (context) => describe(hls, context));
    }
    hls = new Hls(config);
    sealcast.hls = hls;
    const current = () => sealcast.hls === hls;
    const session = verifying;
    const reposition = () => {
      if (session && current()) session.reposition();
    };
    // hls.js moves on purpose: a seek (the viewer's, or its jump to the live edge) or a
    // flush of the buffer ahead (a manual rung switch); the next fragment may be any number.
    video.addEventListener('seeking', reposition);
    hls.on(Hls.Events.BUFFER_FLUSHING, (_e, data) => {
      if (data && data.endOffset === Number.POSITIVE_INFINITY) reposition();
    });
    const steer = () => {
      if (current()) steerLatency(hls);
    };
    video.addEventListener('timeupdate', steer);
    hls.on(Hls.Events.DESTROYING, () => {
      video.removeEventListener('seeking', reposition);
      video.removeEventListener('timeupdate', steer);
      if (video.playbackRate !== 1) video.playbackRate = 1;
    });

    hls.on(Hls.Events.MANIFEST_LOADED, (_e, data) => {
      if (current()) noteNode(data.networkDetails);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      if (!current()) return;
      dropUnplayable(hls);
      buildQuality(hls);
      tryPlay();
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => {
      if (!current()) return;
      noteNode(data.networkDetails);
      const live = Boolean(data.details && data.details.live);
      if (!live && pb.verifyAs.startsWith('/live/')) {
        rungEnded(hls, data.level, pb).catch(() => {});
      }
      sealcast.live = live;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_e, data) => {
      if (!current()) return;
      noteNode(data.networkDetails);
      const frag = data.frag;
      const stats = sealcast.frags;
      stats.total += 1;
      const verified = header(data.networkDetails, VERIFIED_HEADER);
      if (verified && verified.trim().toLowerCase() === 'true') stats.verified += 1;
      if (frag && frag.type === 'main' && frag.sn !== 'initSegment') {
        stats.byLevel[frag.level] = (stats.byLevel[frag.level] || 0) + 1;
        sealcast.lastFragLevel = frag.level;
      }
      if (playback) playback.retries = 0;
    });
    hls.on(Hls.Events.FRAG_CHANGED, (_e, data) => {
      if (!current() || !data.frag) return;
      sealcast.playingLevel = data.frag.level;
      renderOverlay();
    });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (current()) onHlsError(hls, data);
    });
    hls.on(Hls.Events.LEVEL_UPDATED, () => {
      if (current() && pb.timeshift !== undefined) renderTimeshift();
    });

    hls.loadSource(url);
    hls.attachMedia(video);
  }

  // The rungs a master playlist lists, by name (`…/{rung}/index.m3u8`). Pure, for the tests.
  function listedRungs(master) {
    return String(master)
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'))
      // The edges write relative URIs (`src/index.m3u8`); rungName reads a URL.
      .map((uri, i) => rungName({ uri: new URL(uri, location.href).href }, i));
  }
  sealcast.listedRungs = listedRungs;

  // A live stream's rung can end while the stream goes on: an ingest that falls behind
  // real time sheds its lowest rung, and the edge ends that rendition's playlist
  // (`EXT-X-ENDLIST`) and drops it from the master playlist. hls.js, which reads the master
  // playlist once, would play that rung to its end and stop as if the stream had ended.
  // When the playlist of the rung hls.js loads ends, the master playlist tells which it
  // is: the rung still listed, the stream ended (playback ends with it); the rung gone and
  // others listed, playback starts over on those.
  async function rungEnded(hls, index, pb) {
    const name = rungName(hls.levels[index], index);
    const response = await fetch(pb.url, { cache: 'no-store' });
    if (!response.ok) return;
    const text = await response.text();
    if (playback !== pb || sealcast.hls !== hls) return;
    const listed = listedRungs(text);
    if (listed.length === 0 || listed.includes(name)) return;
    console.info(`sealcast: the ${name} rung ended while the stream goes on; playing ${listed.join(', ')}`);
    sealcast.rungsEnded.push({ name, at: new Date().toISOString() });
    sealcast.hls = null;
    hls.destroy();
    startHls(pb.url).catch((err) => showError(`The player could not start: ${err.message || err}`));
  }

  // ---- staying at the target latency ---------------------------------------------------------
  // A live low-latency stream plays a little faster while it is behind the latency hls.js
  // aims at (PART-HOLD-BACK from the playlist, more after a stall): a quarter faster while
  // it is more than half a second behind (the start, which begins at a keyframe up to a
  // segment back), a tenth faster closer in. Never with LATENCY_MIN_AHEAD or less buffered
  // ahead, so catching up cannot starve the buffer. No jumps: hls.js's latency estimate is
  // rough in the first second of playback, and a jump on it left too little buffered and
  // stalled (and a stall makes hls.js aim a second further back for good).

  const LATENCY_SLACK = 0.1; // seconds behind the target that are left alone
  const LATENCY_FAR = 0.5; // seconds behind the target from which the faster rate applies
  const LATENCY_RATE_NEAR = 1.1; // 0.1 s caught up per second, pitch kept
  const LATENCY_RATE_FAR = 1.25;
  const LATENCY_MIN_AHEAD = 0.3; // seconds buffered ahead needed to go faster

  // The playback rate for a stream `latency` seconds behind its live edge that aims at
  // `target`, with `ahead` seconds buffered past the playhead. Pure, for the tests.
  function latencyStep(latency, target, ahead) {
    if (!Number.isFinite(latency) || !Number.isFinite(target) || !Number.isFinite(ahead)) return 1;
    const behind = latency - target;
    if (behind <= LATENCY_SLACK || ahead <= LATENCY_MIN_AHEAD) return 1;
    return behind > LATENCY_FAR ? LATENCY_RATE_FAR : LATENCY_RATE_NEAR;
  }
  sealcast.latencyStep = latencyStep;

  function steerLatency(hls) {
    const details = hls.latestLevelDetails;
    if (!hls.lowLatencyMode || !details || !details.live || video.paused || video.seeking) return;
    let ahead = 0;
    for (let i = 0; i < video.buffered.length; i += 1) {
      if (video.buffered.start(i) <= video.currentTime + 0.05 && video.currentTime < video.buffered.end(i)) {
        ahead = video.buffered.end(i) - video.currentTime;
      }
    }
    const rate = latencyStep(hls.latency, hls.targetLatency, ahead);
    if (video.playbackRate !== rate) video.playbackRate = rate;
  }

  function onHlsError(hls, data) {
    if (!data.fatal) return;
    const Hls = window.Hls;
    sealcast.errors.push({
      source: 'hls.js',
      type: data.type,
      details: data.details,
      reason: data.reason || (data.error && data.error.message) || '',
      url: data.url || (data.frag && data.frag.url) || (data.context && data.context.url) || '',
      at: new Date().toISOString(),
    });
    const pb = playback;
    if (!pb) return;

    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && pb.mediaRecoveries < MAX_MEDIA_RECOVERIES) {
      pb.mediaRecoveries += 1;
      if (verifying) verifying.reposition(); // the buffer starts over, and continuity with it
      showError('A media error interrupted playback; recovering…');
      hls.recoverMediaError();
      return;
    }

    // Anything else: start over with a fresh instance after a pause (the load balancer moves
    // us to another node if ours went away), a bounded number of times.
    sealcast.hls = null;
    hls.destroy();
    if (pb.retries < MAX_RETRIES) {
      pb.retries += 1;
      showError(`Playback stopped (${data.details}); retrying in ${RETRY_MS / 1000} s…`);
      pb.timer = setTimeout(() => {
        if (playback === pb) {
          startHls(pb.url).catch((err) => showError(`The player could not start: ${err.message || err}`));
        }
      }, RETRY_MS);
    } else {
      showError(`Playback failed (${data.details}). Pick the stream again to retry.`);
    }
  }

  function startNative(url) {
    sealcast.hls = null;
    sealcast.verification.mode = MODE_NATIVE_HLS;
    video.src = url;
    tryPlay();
    // Native playback hides the HTTP responses; ask the master playlist which node serves us.
    fetch(url, { cache: 'no-store' })
      .then((response) => {
        if (playback && playback.url === url) noteNode(response);
      })
      .catch(() => {});
  }

  // ---- time-shift ------------------------------------------------------------------------------
  // A recorded live stream's last minutes (the node's `--dvr-window`) stay seekable: its
  // time-shift window (`/live/{stream}/dvr.m3u8`, whole segments named as in the live tree,
  // checked like live media with the same statements) plays over hls.js from the position
  // asked for; "Back to live" picks the live stream again (MoQ or LL-HLS, as before). The
  // seek bar runs from the oldest second the window holds to live, at the right.

  // Closer to live than this plays live, not from the window.
  const LIVE_SLACK_S = 6;

  /** Seconds behind live as the seek bar says it: `Live`, or `−m:ss`. Pure, for the tests. */
  function formatBehind(secs) {
    return !Number.isFinite(secs) || secs < 1 ? 'Live' : `−${formatDuration(secs)}`;
  }
  sealcast.formatBehind = formatBehind;

  // How far behind the live edge of its window the time-shifted playback is.
  function behindLive() {
    const hls = sealcast.hls;
    const details = hls && hls.latestLevelDetails;
    if (!details || !Number.isFinite(details.edge)) return sealcast.timeshift.behind;
    return Math.max(0, details.edge - video.currentTime);
  }

  function renderTimeshift() {
    const ts = sealcast.timeshift;
    const sel = sealcast.selection;
    const entry = sel && sel.kind === 'live' && !sel.token ? findLive(sel.stream) : null;
    const dvr = entry && entry.dvr && Number.isFinite(entry.dvr.seconds) ? entry.dvr : null;
    ts.available = dvr ? dvr.seconds : 0;
    if (ts.active) ts.behind = behindLive();
    const show = ts.active || ts.available >= LIVE_SLACK_S * 2;
    timeshiftBar.hidden = !show;
    if (!show) return;
    const reach = Math.max(Math.ceil(ts.available), Math.ceil(ts.behind));
    seek.min = String(-reach);
    // Not while the viewer drags it.
    if (document.activeElement !== seek) seek.value = String(ts.active ? -Math.round(ts.behind) : 0);
    setText(seekPosition, ts.active ? formatBehind(ts.behind) : 'Live');
    timeshiftBar.classList.toggle('at-live', !ts.active);
    backToLiveButton.disabled = !ts.active;
  }

  // Plays the live stream picked `secs` seconds behind live (0 or close to it: live).
  // Resolves whether it does.
  async function seekBack(secs) {
    const sel = sealcast.selection;
    const ts = sealcast.timeshift;
    if (!sel || sel.kind !== 'live' || !Number.isFinite(secs)) return false;
    if (secs < LIVE_SLACK_S) {
      if (ts.active) backToLive();
      return true;
    }
    ts.seekAt = performance.now();
    ts.seekMs = null;
    const hls = sealcast.hls;
    const details = ts.active && hls ? hls.latestLevelDetails : null;
    if (details && details.fragments.length) {
      // Within the window already playing: a seek.
      video.currentTime = Math.max(details.fragments[0].start, details.edge - secs);
      ts.behind = secs;
      renderTimeshift();
      return true;
    }
    // How long the window is now, from the node that serves it (the list may be 5 s old).
    let dvr = null;
    try {
      const streams = await getJson('/api/v1/streams');
      const entry = Array.isArray(streams) ? streams.find((s) => s && s.name === sel.stream) : null;
      dvr = entry && entry.dvr && Number.isFinite(entry.dvr.seconds) ? entry.dvr : null;
    } catch {
      dvr = null;
    }
    if (sealcast.selection !== sel) return false;
    if (!dvr || typeof dvr.master_url !== 'string') {
      showError('This stream cannot be played behind live here.');
      return false;
    }
    stopPlayback();
    clearError();
    setText(title, `${sel.stream} — behind live`);
    document.title = `${sel.stream} (behind live) · sealcast`;
    ts.active = true;
    ts.entered += 1;
    ts.behind = Math.min(secs, dvr.seconds);
    playback = {
      key: hashOf(sel),
      url: dvr.master_url,
      verifyAs: verifyAs(sel),
      retries: 0,
      mediaRecoveries: 0,
      timer: 0,
      endedAt: 0,
      timeshift: Math.max(0, dvr.seconds - secs),
    };
    placeholder.hidden = true;
    renderTimeshift();
    startHlsPath(dvr.master_url);
    return true;
  }
  sealcast.seekBack = seekBack;

  function backToLive() {
    const sel = sealcast.selection;
    if (!sel || !sealcast.timeshift.active) return;
    sealcast.timeshift.returned += 1;
    select(sel, true);
  }
  sealcast.backToLive = backToLive;

  // The seek's time to playing media: the first moment after it that the video plays with
  // data ahead.
  function noteSeekPlayed() {
    const ts = sealcast.timeshift;
    if (!ts.seekAt || video.paused || video.seeking || video.readyState < 3) return;
    ts.seekMs = Math.round(performance.now() - ts.seekAt);
    ts.seekAt = 0;
  }

  // ---- the source's clock stamp ----------------------------------------------------------------
  // `sealcast source` paints the Unix time in milliseconds into the top of every frame: two rows
  // of 32 cells, each width/32 wide and width/48 tall, laid out in proportion to the width so a
  // scaled rung reads the same way. Cells: white, black (reference levels), 48 bits of
  // milliseconds, CRC-8 (0x07) of its six bytes, trailer 101010. The reader mirrors
  // source/src/stamp.rs; frames without the band (another publisher) read as null.

  const STAMP_COLUMNS = 32;
  const STAMP_CELLS = 64;
  const STAMP_MIN_CONTRAST = 64;
  const STAMP_TRAILER = [true, false, true, false, true, false];
  const stampCanvas = document.createElement('canvas');

  function crc8(bytes) {
    let crc = 0;
    for (const byte of bytes) {
      crc ^= byte;
      for (let i = 0; i < 8; i += 1) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
    return crc;
  }

  // The stamped time of the frame on screen, or null.
  function readStamp() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    const cellHeight = Math.floor(width / 48);
    if (width < 2 * STAMP_COLUMNS || cellHeight < 1 || 2 * cellHeight > height || video.readyState < 2) {
      return null;
    }
    stampCanvas.width = width;
    stampCanvas.height = 2 * cellHeight;
    const context = stampCanvas.getContext('2d', { willReadFrequently: true });
    let pixels;
    try {
      context.drawImage(video, 0, 0, width, 2 * cellHeight, 0, 0, width, 2 * cellHeight);
      pixels = context.getImageData(0, 0, width, 2 * cellHeight).data;
    } catch (e) {
      return null;
    }
    const levels = [];
    for (let i = 0; i < STAMP_CELLS; i += 1) {
      const row = Math.floor(i / STAMP_COLUMNS);
      const column = i % STAMP_COLUMNS;
      const x = Math.floor((column * width) / STAMP_COLUMNS);
      const cellWidth = Math.floor(((column + 1) * width) / STAMP_COLUMNS) - x;
      const y = row * cellHeight;
      const x0 = x + Math.floor(cellWidth / 4);
      const x1 = Math.max(x0 + 1, x + Math.ceil((3 * cellWidth) / 4));
      const y0 = y + Math.floor(cellHeight / 4);
      const y1 = Math.max(y0 + 1, y + Math.ceil((3 * cellHeight) / 4));
      let sum = 0;
      let count = 0;
      for (let py = y0; py < y1; py += 1) {
        for (let px = x0; px < x1; px += 1) {
          const at = (py * width + px) * 4;
          sum += 0.299 * pixels[at] + 0.587 * pixels[at + 1] + 0.114 * pixels[at + 2];
          count += 1;
        }
      }
      levels.push(sum / count);
    }
    const [white, black] = levels;
    if (white < black + STAMP_MIN_CONTRAST * (255 / 219)) return null;
    const bits = levels.map((level) => level > (white + black) / 2);
    if (!bits[0] || bits[1] || STAMP_TRAILER.some((bit, i) => bits[58 + i] !== bit)) return null;
    let ms = 0;
    for (let i = 2; i < 50; i += 1) ms = ms * 2 + (bits[i] ? 1 : 0);
    let crc = 0;
    for (let i = 50; i < 58; i += 1) crc = (crc << 1) | (bits[i] ? 1 : 0);
    const bytes = [];
    for (let i = 5; i >= 0; i -= 1) bytes.push(Math.floor(ms / 2 ** (8 * i)) % 256);
    return crc8(bytes) === crc ? ms : null;
  }

  // ---- overlay -------------------------------------------------------------------------------

  function bufferAhead() {
    const t = video.currentTime;
    const ranges = video.buffered;
    for (let i = 0; i < ranges.length; i += 1) {
      if (ranges.start(i) <= t + 0.1 && t < ranges.end(i)) return ranges.end(i) - t;
    }
    return 0;
  }

  function renderOverlay() {
    const hls = sealcast.hls;
    const active = Boolean(playback);
    setText(ov.node, sealcast.node || '—');

    const levelIndex = sealcast.playingLevel >= 0 ? sealcast.playingLevel : sealcast.lastFragLevel;
    const level = sealcast.levels[levelIndex];
    const rung = moqPlaying ? `${moqPlaying.state.rendition} (MoQ)` : level ? level.name : '—';
    setText(ov.rung, rung);
    setText(ov.bitrate, level ? formatBitrate(level.bitrate) : '—');

    setText(ov.buffer, active && video.readyState > 0 ? `${bufferAhead().toFixed(1)} s` : '—');

    let latency = '—';
    const stamp = active && sealcast.live ? readStamp() : null;
    sealcast.glassToGlass = stamp === null ? null : (Date.now() - stamp) / 1000;
    if (sealcast.glassToGlass !== null) {
      // True glass-to-glass: the frame on screen against the time it was made.
      latency = `${sealcast.glassToGlass.toFixed(2)} s glass-to-glass`;
    } else if (active && hls && sealcast.live && Number.isFinite(hls.latency) && hls.latency > 0) {
      latency = `${hls.latency.toFixed(1)} s`;
    } else if (active && !hls && sealcast.selection && sealcast.selection.kind === 'live' && video.seekable.length) {
      latency = `${(video.seekable.end(video.seekable.length - 1) - video.currentTime).toFixed(1)} s`;
    }
    setText(ov.latency, latency);

    // What this player checked itself; the node's x-sealcast-verified header plays no part.
    const v = sealcast.verification;
    let text;
    let state = '';
    if (!active) {
      text = '—';
    } else if ((!hls && !moqPlaying && video.hasAttribute('src')) || v.mode === MODE_INSECURE) {
      text = 'not verified in this browser';
      state = 'warn';
    } else {
      const parts = [`✔ ${v.verified} verified in this browser`];
      if (v.refusedCount > 0) {
        const last = v.refused[v.refused.length - 1];
        parts.push(`✖ ${v.refusedCount} refused${last ? ` (last: ${last.reason})` : ''}`);
        state = 'warn';
      } else if (v.verified > 0) {
        state = 'ok';
      }
      text = parts.join(' · ');
    }
    setText(ov.verified, text);
    ov.verified.classList.toggle('ok', state === 'ok');
    ov.verified.classList.toggle('warn', state === 'warn');
    setText(ov.verifyMode, v.mode || '—');
    const root = v.fingerprint ? `${groupHex(v.fingerprint)}${v.pinned ? ' (pinned by this page)' : ''}` : '—';
    setText(ov.root, root);
    const p = v.provenance;
    let provenance = '—';
    if (active && p.signer) provenance = `signed by ${p.signer} (C2PA, chained to the root key)`;
    else if (active && p.unsigned > 0 && p.verified === 0) provenance = 'no C2PA data';
    setText(ov.provenance, provenance);
  }

  // ---- wiring --------------------------------------------------------------------------------

  quality.addEventListener('change', () => {
    const index = Number(quality.value);
    if (moqPlaying) {
      // Over MoQ: the rung named in the menu from the next group on, or the automatic pick.
      const level = Number.isInteger(index) && index >= 0 ? sealcast.levels[index] : null;
      moqPlaying.choose(level ? level.name : null);
      return;
    }
    const hls = sealcast.hls;
    if (!hls) return;
    hls.currentLevel = Number.isInteger(index) ? index : -1;
  });

  overlayToggle.addEventListener('click', () => {
    const show = overlayToggle.getAttribute('aria-pressed') !== 'true';
    overlayToggle.setAttribute('aria-pressed', String(show));
    // Hidden visually only: screen readers keep the statistics.
    overlay.classList.toggle('visually-hidden', !show);
  });

  video.addEventListener('error', () => {
    const err = video.error;
    if (!err) return;
    sealcast.errors.push({
      source: 'video',
      code: err.code,
      message: err.message || '',
      at: new Date().toISOString(),
    });
    showError(`The video could not be played (media error ${err.code}${err.message ? `: ${err.message}` : ''}).`);
  });

  video.addEventListener('playing', () => {
    clearError();
    const sel = sealcast.selection;
    if (sel && sel.kind === 'live' && playerStatus.textContent.startsWith('The stream has ended')) {
      setText(playerStatus, '');
    }
  });

  video.addEventListener('ended', () => {
    const sel = sealcast.selection;
    if (sel && sel.kind === 'live') {
      setText(playerStatus, 'The stream has ended.');
      if (playback) playback.endedAt = Date.now();
    }
  });

  video.addEventListener('timeupdate', () => {
    noteSeekPlayed();
    if (sealcast.timeshift.active) renderTimeshift();
  });

  seek.addEventListener('input', () => {
    setText(seekPosition, formatBehind(-Number(seek.value)));
  });

  seek.addEventListener('change', () => {
    const secs = -Number(seek.value);
    seek.blur();
    seekBack(secs).catch((err) => showError(`Could not go back: ${err.message || err}`));
  });

  backToLiveButton.addEventListener('click', backToLive);

  window.addEventListener('hashchange', () => {
    const sel = parseHash(location.hash);
    if (sel) select(sel, false);
  });

  setInterval(renderOverlay, OVERLAY_MS);
  renderOverlay();
  resetQuality();

  // First the lists (so a linked live stream can be found), then the hash, then every 5 s.
  refreshLists()
    .catch((err) => console.error('sealcast: list refresh failed', err))
    .finally(() => {
      const sel = parseHash(location.hash);
      if (sel) select(sel, false);
      setTimeout(refreshLoop, REFRESH_MS);
    });
})();
