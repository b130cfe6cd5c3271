// sealcast cluster dashboard: asks for an API key (kept in this tab's sessionStorage only),
// then reads /api/v1/nodes and /api/v1/live every 2 s. Plain ES2020, no build step; every
// string from the API goes through textContent. A private stream's row has a button that
// mints a playback token (POST /api/v1/streams/NAME/tokens, admin keys) and shows its
// player link. A public stream's row shows its thumbnail once this page verified it
// (verify.js, loaded as a module: the same check as the player's).
'use strict';

(function () {
  const POLL_MS = 2000;
  const STORAGE_KEY = 'sealcast.apiKey';

  const $ = (id) => document.getElementById(id);
  const form = $('key-form');
  const input = $('api-key');
  const forget = $('api-key-forget');
  const errorBox = $('dashboard-error');
  const nodesBody = $('nodes-body');
  const liveBody = $('live-body');
  const lastUpdated = $('last-updated');
  const summaryNodes = $('summary-nodes');
  const summaryLive = $('summary-live');

  let apiKey = readKey();
  let generation = 0;
  let timer = 0;
  // Private streams by name (from the catalog), and the player links minted in this tab.
  let privateStreams = new Set();
  // Streams an operator switched recording off for (the catalog's `record`).
  let unrecordedStreams = new Set();
  const minted = new Map();
  // Verified thumbnails: the loader (verify.js's ThumbnailLoader, once imported), and the
  // blob URL shown per stream with when it was last asked for.
  let thumbnailLoader = null;
  const thumbnails = new Map();
  const THUMBNAIL_EVERY_MS = 5000;
  /** How long a minted link plays, in seconds. */
  const LINK_TTL = 4 * 3600;

  function readKey() {
    try {
      return sessionStorage.getItem(STORAGE_KEY) || '';
    } catch {
      return '';
    }
  }

  function writeKey(key) {
    try {
      if (key) sessionStorage.setItem(STORAGE_KEY, key);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // storage disabled: the key lives in this page only
    }
  }

  // ---- formatting -------------------------------------------------------------------------

  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

  function fmtInt(v) {
    return num(v) === null ? '—' : Math.round(v).toLocaleString();
  }

  function fmtBytes(v) {
    if (num(v) === null) return '—';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let value = v;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
  }

  function fmtMiB(v) {
    return num(v) === null ? '—' : `${(v / 1048576).toFixed(1)} MB`;
  }

  function fmtBandwidth(v) {
    if (num(v) === null) return '—';
    return v >= 1e6 ? `${(v / 1e6).toFixed(2)} Mb/s` : `${Math.round(v / 1e3)} kb/s`;
  }

  function fmtAge(secs) {
    if (num(secs) === null) return '—';
    const s = Math.max(0, Math.round(secs));
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  }

  function fmtSince(unixSecs) {
    if (num(unixSecs) === null) return '—';
    const s = Math.max(0, Math.round(Date.now() / 1000 - unixSecs));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const running = h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
    return `${new Date(unixSecs * 1000).toLocaleTimeString()} (${running})`;
  }

  // ---- DOM helpers ---------------------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function emptyRow(colspan, text) {
    const tr = document.createElement('tr');
    const td = cell(text, 'empty');
    td.colSpan = colspan;
    tr.append(td);
    return tr;
  }

  function showError(message) {
    if (errorBox.textContent !== message) errorBox.textContent = message;
  }

  function clearError() {
    showError('');
  }

  // ---- rendering -----------------------------------------------------------------------------

  function renderNodes(nodes) {
    const now = Date.now() / 1000;
    const sorted = nodes.slice().sort((a, b) =>
      String(a.role).localeCompare(String(b.role)) ||
      String(a.node).localeCompare(String(b.node), undefined, { numeric: true }));
    const rows = sorted.map((n) => {
      const load = n.load || {};
      const seg = n.segments || {};
      const tr = document.createElement('tr');
      tr.dataset.node = String(n.node);
      const nodeCell = document.createElement('th');
      nodeCell.scope = 'row';
      nodeCell.textContent = String(n.node);
      if (n.url) nodeCell.title = String(n.url);
      const healthy = cell(n.healthy ? 'yes' : 'no', n.healthy ? 'ok' : 'bad');
      const rejected = cell(fmtInt(seg.rejected), `num${num(seg.rejected) ? ' bad' : ''}`);
      const gaps = cell(fmtInt(seg.gaps), `num${num(seg.gaps) ? ' warn' : ''}`);
      tr.append(
        nodeCell,
        cell(String(n.role ?? '—')),
        cell(String(n.state ?? '—'), n.state === 'ready' ? '' : 'warn'),
        healthy,
        cell(num(load.cpu_percent) === null ? '—' : `${load.cpu_percent.toFixed(1)} %`, 'num'),
        cell(fmtMiB(load.memory_bytes), 'num'),
        cell(fmtInt(load.connections), 'num'),
        cell(fmtBytes(load.bytes_out), 'num'),
        cell(fmtInt(load.viewers), 'num'),
        cell(fmtInt(seg.verified), 'num'),
        rejected,
        gaps,
        cell(fmtAge(num(n.last_report) === null ? null : now - n.last_report), 'num'),
      );
      return tr;
    });
    nodesBody.replaceChildren(...(rows.length ? rows : [emptyRow(13, 'No node has reported yet.')]));
    const healthyCount = nodes.filter((n) => n.healthy).length;
    summaryNodes.textContent = `${nodes.length} node${nodes.length === 1 ? '' : 's'}, ${healthyCount} healthy`;
  }

  // Sizes and bitrates of each stream's rungs, from the public stream list:
  // stream name -> rendition name -> {width, height, bandwidth}.
  function rungFacts(streams) {
    const facts = new Map();
    for (const s of streams) {
      const rungs = new Map();
      for (const r of Array.isArray(s.renditions) ? s.renditions : []) rungs.set(String(r.name), r);
      facts.set(String(s.name), rungs);
    }
    return facts;
  }

  function rungTable(renditions, facts) {
    const table = document.createElement('table');
    table.className = 'rungs';
    const head = document.createElement('tr');
    for (const label of ['Rung', 'Resolution', 'Bandwidth', 'Encode fps', 'Realtime']) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = label;
      head.append(th);
    }
    const thead = document.createElement('thead');
    thead.append(head);
    const tbody = document.createElement('tbody');
    for (const r of renditions) {
      const tr = document.createElement('tr');
      const rung = String(r.rendition ?? r.name);
      const known = (facts && facts.get(rung)) || {};
      tr.dataset.rung = rung;
      const rf = num(r.realtime_factor);
      tr.append(
        cell(rung),
        cell(num(known.width) !== null && num(known.height) !== null ? `${known.width}×${known.height}` : '—'),
        cell(fmtBandwidth(known.bandwidth), 'num'),
        cell(num(r.encode_fps) === null ? '—' : r.encode_fps.toFixed(1), 'num'),
        cell(rf === null ? '—' : `${rf.toFixed(3)}×`, `num${rf !== null && rf < 0.98 ? ' warn' : ''}`),
      );
      tbody.append(tr);
    }
    table.append(thead, tbody);
    return table;
  }

  // A button that mints a player link for private stream `stream` into `link`.
  function mintButton(stream, link) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button';
    button.textContent = minted.has(stream) ? 'Private: new link' : 'Private: mint link';
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const response = await fetch(`/api/v1/streams/${encodeURIComponent(stream)}/tokens`, {
          method: 'POST',
          cache: 'no-store',
          headers: { 'x-api-key': apiKey, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ ttl: LINK_TTL }),
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(typeof body.error === 'string' ? body.error : `${response.status}`);
        if (typeof body.player !== 'string' || !body.player.startsWith('/#live/')) throw new Error('no player link');
        minted.set(stream, body.player);
        link.href = body.player;
        button.textContent = 'Private: new link';
        clearError();
      } catch (err) {
        showError(`Could not mint a link for ${stream}: ${err.message}`);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  function renderLive(streams, publicStreams) {
    const facts = rungFacts(publicStreams);
    const rows = streams.map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.stream = String(s.name);
      const name = document.createElement('th');
      name.scope = 'row';
      const link = document.createElement('a');
      link.href = minted.get(String(s.name)) || `/#live/${encodeURIComponent(String(s.name))}`;
      link.textContent = String(s.name);
      name.append(link);
      if (privateStreams.has(String(s.name))) name.append(' ', mintButton(String(s.name), link));
      if (unrecordedStreams.has(String(s.name))) {
        const note = document.createElement('small');
        note.className = 'not-recorded';
        note.textContent = ' not recorded';
        name.append(note);
      }

      const perNode = document.createElement('td');
      const list = document.createElement('ul');
      list.className = 'node-list';
      for (const n of Array.isArray(s.nodes) ? s.nodes : []) {
        const li = document.createElement('li');
        li.dataset.node = String(n.node);
        li.textContent = `${n.node}: ${fmtInt(n.viewers)}`;
        list.append(li);
      }
      if (list.children.length) perNode.append(list);
      else perNode.textContent = '—';
      const publicEntry = publicStreams.find((p) => p && p.name === s.name);
      thumbnailCell(name, String(s.name), publicEntry ? publicEntry.thumbnail_url : null);

      const rungs = document.createElement('td');
      const renditions = Array.isArray(s.renditions) ? s.renditions : [];
      if (renditions.length) rungs.append(rungTable(renditions, facts.get(String(s.name))));
      else rungs.textContent = '—';

      tr.append(
        name,
        cell(String(s.session ?? '—')),
        cell(String(s.ingest_node ?? '—')),
        cell(fmtSince(s.started_at)),
        cell(fmtInt(s.viewers), 'num'),
        perNode,
        rungs,
      );
      return tr;
    });
    liveBody.replaceChildren(...(rows.length ? rows : [emptyRow(7, 'No stream is live.')]));
    const viewers = streams.reduce((sum, s) => sum + (num(s.viewers) || 0), 0);
    summaryLive.textContent =
      `${streams.length} live stream${streams.length === 1 ? '' : 's'}, ${viewers} viewer${viewers === 1 ? '' : 's'}`;
  }

  // ---- thumbnails ----------------------------------------------------------------------------

  // Puts the stream's verified thumbnail (if any yet) under its name, and asks for a newer
  // one at most every THUMBNAIL_EVERY_MS. Nothing unverified is ever shown.
  function thumbnailCell(cellNode, stream, url) {
    if (typeof url !== 'string' || !url.startsWith('/')) return;
    const held = thumbnails.get(stream) || { blob: null, at: 0 };
    thumbnails.set(stream, held);
    if (held.blob) {
      const img = document.createElement('img');
      img.className = 'live-thumb';
      img.alt = '';
      img.src = held.blob;
      img.dataset.verified = 'true';
      cellNode.append(img);
    }
    if (Date.now() - held.at < THUMBNAIL_EVERY_MS) return;
    held.at = Date.now();
    loader().then((l) => (l ? l.load(url) : null)).then((blob) => {
      if (!blob || blob === held.blob) return;
      held.blob = blob;
      const row = liveBody.querySelector(`tr[data-stream="${CSS.escape(stream)}"] th`);
      if (!row) return;
      let img = row.querySelector('img.live-thumb');
      if (!img) {
        img = document.createElement('img');
        img.className = 'live-thumb';
        img.alt = '';
        img.dataset.verified = 'true';
        row.append(img);
      }
      img.src = blob;
    }).catch(() => {});
  }

  function loader() {
    if (!thumbnailLoader) {
      thumbnailLoader = import('/assets/verify.js').then((verify) => {
        const l = new verify.ThumbnailLoader(verify.openTrust());
        window.sealcast = Object.assign(window.sealcast || {}, { thumbnails: l.counts });
        return l;
      }).catch(() => null);
    }
    return thumbnailLoader;
  }

  // ---- polling -------------------------------------------------------------------------------

  async function getJson(path) {
    const response = await fetch(path, {
      cache: 'no-store',
      headers: { 'x-api-key': apiKey, accept: 'application/json' },
    });
    if (!response.ok) {
      let reason = `${response.status} ${response.statusText}`.trim();
      try {
        const body = await response.json();
        if (body && typeof body.error === 'string') reason = body.error;
      } catch {
        // not JSON: keep the status line
      }
      const err = new Error(reason);
      err.status = response.status;
      throw err;
    }
    return response.json();
  }

  async function poll(gen) {
    try {
      const [nodes, live, publicStreams, cataloged] = await Promise.all([
        getJson('/api/v1/nodes'),
        getJson('/api/v1/live'),
        getJson('/api/v1/streams'),
        getJson('/api/v1/catalog/streams').catch(() => null),
      ]);
      if (gen !== generation) return;
      if (Array.isArray(cataloged)) {
        privateStreams = new Set(cataloged.filter((c) => c && c.private === true).map((c) => String(c.name)));
        unrecordedStreams = new Set(cataloged.filter((c) => c && c.record === false).map((c) => String(c.name)));
      }
      renderNodes(Array.isArray(nodes) ? nodes : []);
      renderLive(Array.isArray(live) ? live : [], Array.isArray(publicStreams) ? publicStreams : []);
      const now = new Date();
      lastUpdated.textContent = `Last updated ${now.toLocaleTimeString()}.`;
      lastUpdated.dataset.updated = now.toISOString();
      clearError();
    } catch (err) {
      if (gen !== generation) return;
      if (err.status === 401 || err.status === 403) {
        rejectKey(err);
        return;
      }
      showError(`Could not refresh the dashboard (${err.message}); retrying every ${POLL_MS / 1000} s.`);
    }
    if (gen === generation) timer = setTimeout(() => poll(gen), POLL_MS);
  }

  function start() {
    stop();
    forget.hidden = !apiKey;
    if (!apiKey) return;
    input.placeholder = 'Key saved for this tab — enter another to replace it';
    const gen = generation;
    poll(gen);
  }

  function stop() {
    generation += 1;
    clearTimeout(timer);
  }

  function rejectKey(err) {
    stop();
    apiKey = '';
    writeKey('');
    forget.hidden = true;
    input.placeholder = 'ak_…';
    const why = err.status === 401
      ? 'The API key was not accepted'
      : 'This API key may not read the cluster state';
    showError(`${why} (${err.status}: ${err.message}). Enter a valid API key.`);
    input.focus();
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showError('Enter an API key first.');
      input.focus();
      return;
    }
    apiKey = key;
    writeKey(key);
    input.value = '';
    clearError();
    lastUpdated.textContent = 'Loading…';
    start();
  });

  forget.addEventListener('click', () => {
    stop();
    apiKey = '';
    writeKey('');
    forget.hidden = true;
    input.placeholder = 'ak_…';
    nodesBody.replaceChildren(emptyRow(13, 'Enter an API key to see the nodes.'));
    liveBody.replaceChildren(emptyRow(7, 'Enter an API key to see the live streams.'));
    summaryNodes.textContent = '';
    summaryLive.textContent = '';
    lastUpdated.textContent = 'Not updated yet.';
    input.focus();
  });

  if (apiKey) start();
  else input.focus();
})();
