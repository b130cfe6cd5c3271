//! `web/src/moq.js` fed mutated relay bytes, in Chromium. The bytes a MoQ relay sends are
//! hostile input, so moq.js gets the treatment every other parser of ours gets: mutation
//! rounds, deterministic (each round's PRNG is seeded by the round), checked for hangs,
//! uncaught errors and oversized results.
//!
//! No relay takes part: the test page replaces `globalThis.WebTransport` with a fake whose
//! streams (ReadableStream / WritableStream, as the real API's) play back what the page
//! built: a relay's SETUP stream, its answer to the subscription (SUBSCRIBE_START, then
//! SUBSCRIBE_END and FIN once every group stream was read) and three group streams of a few
//! frames each. Every round but the first changes that relay's script in one to three ways
//! picked by its seed: bits flipped, bytes overwritten, streams cut short or given trailing
//! junk, varints set to huge values or encoded long, message and frame sizes overstated,
//! understated, zero or past the limits, 4 MiB and 4 MiB + 1 objects, hundreds of tiny
//! frames, empty streams, group streams duplicated, reordered, for unknown subscriptions, with
//! sequences going backwards, before the subscription, more than moq.js queues; SETUP
//! missing, doubled or mistyped; subscription answers missing, unknown, ended early or
//! reset; group streams reset; the session closed or lost by the relay at some point; the
//! wrong sub-protocol; a failed handshake; relay-opened bidirectional streams; and bytes
//! delivered in random or tiny chunks (with empty ones among them).
//!
//! Each round drives the public API (`MoqSession.connect`, `subscribe`, `nextGroup`,
//! `nextObject` until null or an error) under a per-round limit. The test fails on a round
//! that does not settle in time (naming its seed), on an uncaught exception or unhandled
//! rejection in the page, on anything thrown that is not an `Error` with a message, on an
//! object over moq.js's 4 MiB cap, and unless the unmutated round returns exactly the
//! frames it was given. `REGRESSIONS` in the page keeps the seeds of rounds that once found
//! a bug in moq.js, run on top of the rounds.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::header;
use serde_json::Value;
use testkit::browser::Browser;
use tokio::net::TcpListener;

/// Mutated rounds (the unmutated one comes on top).
const ROUNDS: u64 = 400;
/// How long the page may take for all rounds.
const PAGE_LIMIT: Duration = Duration::from_secs(300);

const TEST_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moq.js, hostile relay</title>
<script type="module" src="/moq-hostile.js"></script>
</head><body><p>moq.js against a hostile relay</p></body></html>"#;

const TEST_SCRIPT: &str = r##"
import { MoqSession } from '/moq.js';

const query = new URLSearchParams(location.search);
const ROUNDS = Number(query.get('rounds'));
/** moq.js's caps: an object, a control message. */
const MAX_OBJECT = 4 * 1024 * 1024;
const MAX_CONTROL = 64 * 1024;
/** Past this a round has hung (connect's own limit is CONNECT_MS; the end grace is 1 s). */
const ROUND_LIMIT_MS = 20000;
const CONNECT_MS = 1500;
/** The limit of a regression case (each runs alone; a fixed drip takes a few seconds). */
const REGRESSION_LIMIT_MS = 45000;
const CONCURRENCY = 8;
/**
 * Rounds that once found a bug in moq.js, run on every run: a seed, and the mutations it
 * found the bug with (the seed's PRNG then only fills in their details).
 */
const REGRESSIONS = [
  // A 1 MiB object dripped a byte per read: moq.js kept every chunk in a list and walked it
  // with shift(), quadratic (in Node, 7 minutes and 250 MB of heap, on the page's thread).
  { name: 'dripped object', seed: 0x0d81b001, mutations: ['drip'] },
];
/** Bytes of the object a `drip` round sends a byte per read. */
const DRIP = 1024 * 1024;

// ---- what was seen, page-wide ----
const inflight = new Set();
const unhandled = [];
window.addEventListener('unhandledrejection', (e) => {
  const r = e.reason;
  unhandled.push({ seeds: [...inflight], kind: 'unhandled rejection', reason: `${(r && r.stack) || r}` });
});
window.addEventListener('error', (e) => {
  unhandled.push({ seeds: [...inflight], kind: 'uncaught', reason: `${e.message} at ${e.filename}:${e.lineno}` });
});

// ---- deterministic randomness ----
function mulberry32(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => Math.floor(next() * n);
}
const pick = (rnd, list) => list[rnd(list.length)];
const seedOf = (i) => (Math.imul(i + 1, 0x9e3779b1) ^ 0x6d6f7121) >>> 0;

// ---- the wire: QUIC varints, tokens, streams ----
function vbytes(v, forced) {
  let b = BigInt(v);
  const len = forced || (b < 0x40n ? 1 : b < 0x4000n ? 2 : b < 0x40000000n ? 4 : 8);
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i -= 1) {
    out[i] = Number(b & 0xffn);
    b >>= 8n;
  }
  out[0] = (out[0] & 0x3f) | [0, 0x40, 0x80, 0, 0xc0][len >> 1];
  return out;
}
const V = (v) => ({ t: 'v', v });
const M = (...body) => ({ t: 'm', body });
const F = (ts, payload) => ({ t: 'f', ts, payload });
const BIG = new Uint8Array(MAX_OBJECT + 1);

function serializeInto(tokens, out) {
  for (const k of tokens) {
    if (k.t === 'v') out.push(vbytes(k.v, k.len));
    else if (k.t === 'b') out.push(k.b);
    else if (k.t === 'm') {
      const body = [];
      serializeInto(k.body, body);
      out.push(vbytes(k.size ?? body.reduce((n, b) => n + b.length, 0), k.len));
      out.push(...body);
    } else if (k.t === 'f') {
      out.push(vbytes(k.ts), vbytes(k.size ?? k.payload.length, k.len), k.payload);
    }
  }
}
function serialize(stream) {
  const parts = [];
  serializeInto(stream.tokens, parts);
  let bytes = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  parts.reduce((at, b) => { bytes.set(b, at); return at + b.length; }, 0);
  for (const p of stream.post) {
    if (p.op === 'append') {
      const more = new Uint8Array(bytes.length + p.bytes.length);
      more.set(bytes);
      more.set(p.bytes, bytes.length);
      bytes = more;
    } else if (bytes.length > 0) {
      const at = p.at % bytes.length;
      if (p.op === 'flip') bytes[at] ^= 1 << p.bit;
      else if (p.op === 'byte') bytes[at] = p.value;
      else if (p.op === 'cut') bytes = bytes.slice(0, at);
    }
  }
  return bytes;
}
const stream = (tokens, end = 'fin') => ({ tokens, end, post: [] });

// ---- the relay's script ----
const PAYLOAD_SIZES = [[5, 0, 200], [64, 16383, 1], [70000, 3, 17]];
function payload(sequence, index, size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) out[i] = (sequence * 31 + index * 7 + i) & 0xff;
  return out;
}
function groupStream(id, sequence, sizes) {
  return stream([V(0), M(V(id), V(sequence), V(0)), ...sizes.map((n, i) => F(i === 0 ? 0 : 66, payload(sequence, i, n)))]);
}
function baseScenario() {
  const groups = PAYLOAD_SIZES.map((sizes, g) => groupStream(0, 7 + g, sizes));
  return {
    protocol: 'moq-lite-06',
    readyFails: false,
    setups: [stream([V(1), M(V(2), V(3), V(1), V(1), V(4), V(1), V(0))])],
    early: [],
    answer: { head: stream([V(0), M(V(7))]), tail: stream([V(1), M(V(10))]), waitGroups: true },
    groups,
    relayBidi: [],
    relayClose: null,
    chunking: 'whole',
  };
}
function expected(sc) {
  return sc.groups.map((g) => ({
    sequence: g.tokens[1].body[1].v,
    frameStart: 0,
    objects: g.tokens.slice(2).map((f) => hex(f.payload)),
  }));
}
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

// ---- mutations ----
const HUGE = [0x3f, 0x40, 0x3fff, 0x4000, 0x3fffffff, MAX_CONTROL, MAX_CONTROL + 1, MAX_OBJECT, MAX_OBJECT + 1,
  2 ** 32, 2 ** 53 - 1, 2n ** 53n, 2n ** 62n - 1n];
const streamsOf = (sc) => [...sc.setups, sc.answer.head, sc.answer.tail, ...sc.groups, ...sc.early, ...sc.relayBidi];
function tokensOf(sc, t) {
  const out = [];
  const walk = (tokens) => tokens.forEach((k) => { if (k.t === t) out.push(k); if (k.t === 'm') walk(k.body); });
  streamsOf(sc).forEach((s) => walk(s.tokens));
  return out;
}
const anyStream = (sc, rnd) => pick(rnd, streamsOf(sc));
const clone = (s) => ({ tokens: structuredClone(s.tokens), end: s.end, post: [...s.post] });
const junk = (rnd, n) => Uint8Array.from({ length: n }, () => rnd(256));

/** A group stream's GROUP header, unless an earlier mutation emptied the stream. */
const headerOf = (sc, rnd) => {
  const g = sc.groups.length ? pick(rnd, sc.groups) : null;
  return g && g.tokens[1] && g.tokens[1].t === 'm' ? g.tokens[1].body : [];
};

const MUTATIONS = {
  flip: (sc, rnd) => anyStream(sc, rnd).post.push({ op: 'flip', at: rnd(1 << 30), bit: rnd(8) }),
  byte: (sc, rnd) => anyStream(sc, rnd).post.push({ op: 'byte', at: rnd(1 << 30), value: pick(rnd, [0, 0xff, 0x3f, 0x40, 0xc0, rnd(256)]) }),
  headByte: (sc, rnd) => anyStream(sc, rnd).post.push({ op: 'byte', at: rnd(4), value: rnd(256) }),
  cut: (sc, rnd) => anyStream(sc, rnd).post.push({ op: 'cut', at: rnd(1 << 30) }),
  cutEarly: (sc, rnd) => anyStream(sc, rnd).post.push({ op: 'cut', at: rnd(6) }),
  append: (sc, rnd) => anyStream(sc, rnd).post.push({ op: 'append', bytes: junk(rnd, 1 + rnd(16)) }),
  hugeVarint: (sc, rnd) => { const v = tokensOf(sc, 'v'); if (v.length) pick(rnd, v).v = pick(rnd, HUGE); },
  longVarint: (sc, rnd) => { const v = tokensOf(sc, 'v'); if (v.length) pick(rnd, v).len = 8; },
  messageSize: (sc, rnd) => {
    const m = tokensOf(sc, 'm');
    if (!m.length) return;
    const k = pick(rnd, m);
    k.size = pick(rnd, [0, 1, 2, 100, MAX_CONTROL, MAX_CONTROL + 1, 2 ** 53 - 1, 2n ** 62n - 1n]);
  },
  frameSize: (sc, rnd) => {
    const f = tokensOf(sc, 'f');
    if (!f.length) return;
    const k = pick(rnd, f);
    k.size = pick(rnd, [0, k.payload.length + 1, k.payload.length + 1000, MAX_OBJECT, MAX_OBJECT + 1, 2 ** 32, 2 ** 53 - 1, 2n ** 62n - 1n]);
  },
  bigFrame: (sc, rnd) => {
    const f = tokensOf(sc, 'f');
    if (f.length) pick(rnd, f).payload = BIG.subarray(0, pick(rnd, [MAX_OBJECT, MAX_OBJECT + 1, MAX_OBJECT - 1]));
  },
  emptyFrame: (sc, rnd) => { const f = tokensOf(sc, 'f'); if (f.length) pick(rnd, f).payload = new Uint8Array(0); },
  manyFrames: (sc, rnd) => {
    if (!sc.groups.length) return;
    const g = pick(rnd, sc.groups);
    for (let i = 0; i < 300; i += 1) g.tokens.push(F(1, junk(rnd, rnd(3))));
  },
  emptyStream: (sc, rnd) => { anyStream(sc, rnd).tokens = []; },
  dupGroup: (sc, rnd) => { if (sc.groups.length) { const i = rnd(sc.groups.length); sc.groups.splice(i, 0, clone(sc.groups[i])); } },
  shuffleGroups: (sc, rnd) => {
    for (let i = sc.groups.length - 1; i > 0; i -= 1) {
      const j = rnd(i + 1);
      [sc.groups[i], sc.groups[j]] = [sc.groups[j], sc.groups[i]];
    }
  },
  unknownId: (sc, rnd) => { headerOf(sc, rnd)[0] = V(pick(rnd, [1, 2, 63, 2 ** 40])); },
  sequence: (sc, rnd) => { headerOf(sc, rnd)[1] = V(pick(rnd, [0, 6, 7, 8, 2 ** 53 - 1])); },
  frameStart: (sc, rnd) => { headerOf(sc, rnd)[2] = V(pick(rnd, [1, 2, 2 ** 53 - 1])); },
  flood: (sc, rnd) => { for (let s = 20; s < 45; s += 1) sc.groups.push(groupStream(0, s, [1 + rnd(40), rnd(3)])); },
  noSetup: (sc) => { sc.setups = []; },
  twoSetups: (sc) => { if (sc.setups.length) sc.setups.push(clone(sc.setups[0])); },
  setupType: (sc, rnd) => { if (sc.setups.length) sc.setups[0].tokens[0] = V(pick(rnd, [0, 2, 5, 9, 0x3fff])); },
  noStart: (sc) => { sc.answer.head.tokens = []; },
  responseType: (sc, rnd) => { sc.answer.head.tokens[0] = V(pick(rnd, [1, 2, 3, 9, 2 ** 30])); },
  dropResponse: (sc, rnd) => { sc.answer.head.tokens.push(V(2), M(V(8), V(rnd(10)), V(0x33))); },
  endValue: (sc, rnd) => { sc.answer.tail.tokens = [V(1), M(V(pick(rnd, [0, 1, 8, 11, 2 ** 53 - 1])))]; },
  noEnd: (sc) => { sc.answer.tail.tokens = []; },
  tailEarly: (sc) => { sc.answer.waitGroups = false; },
  answerReset: (sc, rnd) => { sc.answer.tail.end = { reset: pick(rnd, [0, 0x33, 0x34, 0x36, 0x12, 0x1234, 2 ** 32 - 1]) }; },
  groupReset: (sc, rnd) => { if (sc.groups.length) pick(rnd, sc.groups).end = { reset: pick(rnd, [0, 0x2, 0x32, 0x34, 0x35, 0x99]) }; },
  relayClose: (sc, rnd) => {
    sc.relayClose = {
      at: pick(rnd, ['ready', 'subscribe', 'group']),
      lost: rnd(3) === 0,
      info: { closeCode: pick(rnd, [0, 1, 2, 3, 0x15, 0x77, 2 ** 32 - 1]), reason: pick(rnd, ['', 'bye', 'x'.repeat(1000)]) },
    };
  },
  protocol: (sc, rnd) => { sc.protocol = pick(rnd, ['', 'moq-lite-05', 'moq-lite-06 ', 'moqt-15', null]); },
  readyFails: (sc) => { sc.readyFails = true; },
  relayBidi: (sc, rnd) => { sc.relayBidi.push(stream([V(pick(rnd, [5, 2, 0, 1, 77, 2 ** 53 - 1])), { t: 'b', b: junk(rnd, rnd(8)) }])); },
  earlyGroup: (sc, rnd) => { if (sc.groups.length) sc.early.push(...sc.groups.splice(rnd(sc.groups.length), 1)); },
  chunks: (sc, rnd) => { sc.chunking = pick(rnd, ['random', 'tiny']); },
  drip: (sc, rnd) => {
    const f = tokensOf(sc, 'f');
    if (f.length) pick(rnd, f).payload = payload(1, 1, DRIP);
    sc.chunking = 'drip';
  },
};
/** What random rounds pick from; `drip` (seconds a round) only runs as its regression case. */
const MUTATION_NAMES = Object.keys(MUTATIONS).filter((name) => name !== 'drip');

function mutatedScenario(seed, forced = null) {
  const rnd = mulberry32(seed);
  const sc = baseScenario();
  const applied = [];
  const count = forced ? forced.length : 1 + rnd(3);
  for (let i = 0; i < count; i += 1) {
    const name = forced ? forced[i] : pick(rnd, MUTATION_NAMES);
    MUTATIONS[name](sc, rnd);
    applied.push(name);
  }
  if (sc.chunking === 'whole' && rnd(4) === 0) sc.chunking = 'random';
  sc.rnd = rnd;
  return { sc, applied };
}

// ---- the fake WebTransport ----
const scenarios = new Map();
const RealWebTransport = globalThis.WebTransport;
/** A WebTransportError as Chromium makes them (its constructor takes one dictionary). */
const transportError = (message, init) => {
  const code = init.streamErrorCode === undefined ? {} : { streamErrorCode: init.streamErrorCode };
  for (const make of [() => new WebTransportError({ message, ...code }), () => new WebTransportError(message, init)]) {
    try {
      return make();
    } catch {
      // The other constructor, then a plain Error.
    }
  }
  return Object.assign(new Error(message), init);
};

class FakeWebTransport {
  constructor(url, init) {
    const sc = scenarios.get(url);
    if (!sc) throw new TypeError(`no scenario for ${url}`);
    this.sc = sc;
    this.offered = init && init.protocols;
    this.protocol = sc.protocol;
    this.done = false;
    this.controllers = [];
    this.pulled = 0;
    this.ready = sc.readyFails
      ? Promise.reject(transportError('Opening handshake failed.', { source: 'session' }))
      : Promise.resolve();
    this.ready.catch(() => {});
    this.closed = new Promise((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
    this.closed.catch(() => {});
    this.incomingUnidirectionalStreams = new ReadableStream({ start: (c) => { this.uni = c; } });
    this.incomingBidirectionalStreams = new ReadableStream({ start: (c) => { this.bidi = c; } });
    this.groupsLeft = sc.groups.length;
    this.groupsSettled = new Promise((resolve) => { this.allGroupsSettled = resolve; });
    if (this.groupsLeft === 0) this.allGroupsSettled();
    this.subscribed = false;
    if (sc.readyFails) this.shutdown(null, true);
    else this.ready.then(() => this.open());
  }

  open() {
    if (this.done) return;
    for (const s of this.sc.setups) this.uni.enqueue(this.receive(s));
    for (const s of this.sc.early) this.uni.enqueue(this.receive(s));
    for (const s of this.sc.relayBidi) {
      this.bidi.enqueue({ readable: this.receive(s), writable: this.sink(() => {}) });
    }
    if (this.sc.relayClose && this.sc.relayClose.at === 'ready') this.relayCloses();
  }

  relayCloses() {
    const { lost, info } = this.sc.relayClose;
    this.shutdown(info, lost);
  }

  chunk(bytes) {
    const mode = this.sc.chunking;
    if (mode === 'whole') return bytes.length ? [bytes] : [];
    const rnd = this.sc.rnd;
    const out = [];
    for (let at = 0; at < bytes.length;) {
      if (mode === 'random' && rnd(8) === 0) out.push(new Uint8Array(0));
      let n = mode === 'drip' ? 1 : mode === 'tiny' ? 1 + rnd(3) : 1 + rnd(64);
      if (bytes.length > (mode === 'drip' ? 2 * DRIP : 300000)) n = 1 + rnd(65536);
      out.push(bytes.slice(at, at + n));
      at += n;
    }
    return out;
  }

  /** A receive stream of `s`'s bytes, handed out as they are read; `settled` once read or cancelled. */
  receive(s, settled = () => {}, then = null) {
    const chunks = this.chunk(serialize(s));
    let i = 0;
    let over = false;
    const settle = () => {
      if (!over) {
        over = true;
        settled();
      }
    };
    const finish = async (c) => {
      if (then) {
        await then.wait();
        return this.push(c, then.chunks, then.end, settle);
      }
      this.end(c, s.end, settle);
      return undefined;
    };
    let controller;
    const readable = new ReadableStream({
      start: (c) => {
        controller = c;
      },
      pull: async (c) => {
        if (this.done) return undefined;
        if (i < chunks.length) {
          this.pulled += chunks[i].length;
          c.enqueue(chunks[i]);
          i += 1;
          return undefined;
        }
        return finish(c);
      },
      cancel: () => settle(),
    }, { highWaterMark: 0 });
    this.controllers.push({ error: (e) => { try { controller.error(e); } catch { /* over */ } settle(); } });
    return readable;
  }

  /** The rest of a receive stream (the subscription answer's tail). */
  push(c, chunks, end, settle) {
    if (this.done) return;
    try {
      for (const chunk of chunks) c.enqueue(chunk);
      this.end(c, end, settle);
    } catch {
      // The stream was errored meanwhile.
    }
  }

  end(c, end, settle) {
    try {
      if (end === 'fin') c.close();
      else c.error(transportError('The stream was reset.', { source: 'stream', streamErrorCode: end.reset }));
    } catch {
      // Already errored.
    }
    settle();
  }

  sink(written) {
    let controller;
    const writable = new WritableStream({
      start: (c) => {
        controller = c;
      },
      write: (chunk) => written(chunk),
    });
    this.controllers.push({ error: (e) => { try { controller.error(e); } catch { /* over */ } } });
    return writable;
  }

  async createUnidirectionalStream() {
    if (this.done) throw transportError('The session is closed.', { source: 'session' });
    return this.sink(() => {});
  }

  async createBidirectionalStream() {
    if (this.done) throw transportError('The session is closed.', { source: 'session' });
    const sc = this.sc;
    const tail = {
      chunks: this.chunk(serialize(sc.answer.tail)),
      end: sc.answer.tail.end,
      wait: () => (sc.answer.waitGroups ? this.groupsSettled : Promise.resolve()),
    };
    const readable = this.receive(sc.answer.head, () => {}, tail);
    const writable = this.sink((chunk) => this.request(chunk));
    return { readable, writable };
  }

  /** moq.js wrote on a subscription stream: the first write is SUBSCRIBE; the groups follow. */
  request(chunk) {
    if (this.subscribed || this.done) return;
    this.subscribed = true;
    this.subscribe = Array.from(chunk);
    if (this.sc.relayClose && this.sc.relayClose.at === 'subscribe') {
      this.relayCloses();
      return;
    }
    for (const g of this.sc.groups) {
      this.uni.enqueue(this.receive(g, () => {
        this.groupsLeft -= 1;
        if (this.groupsLeft === 0) this.allGroupsSettled();
        if (this.sc.relayClose && this.sc.relayClose.at === 'group') this.relayCloses();
      }));
    }
  }

  close(info = {}) {
    this.shutdown({ closeCode: info.closeCode ?? 0, reason: info.reason ?? '' }, false);
  }

  shutdown(info, lost) {
    if (this.done) return;
    this.done = true;
    const e = transportError('The session is closed.', { source: 'session' });
    for (const c of this.controllers.splice(0)) c.error(e);
    for (const c of [this.uni, this.bidi]) {
      try {
        c.error(e);
      } catch {
        // Over already.
      }
    }
    this.allGroupsSettled();
    if (lost) this.rejectClosed(transportError('Connection lost.', { source: 'session' }));
    else this.resolveClosed(info);
  }
}
globalThis.WebTransport = FakeWebTransport;

// ---- one round ----
function errorProblem(e, where) {
  if (!(e instanceof Error)) return `${where}: threw a non-Error: ${typeof e} ${String(e)}`;
  if (typeof e.message !== 'string' || e.message.length === 0) return `${where}: an Error without a message`;
  return null;
}

async function play(seed, sc, keep) {
  const url = `https://relay.invalid/round/${seed}`;
  scenarios.set(url, sc);
  const out = { seed, stage: 'connect', groups: [], end: null, error: null, bad: [], objects: 0 };
  const fail = (e, where) => {
    const problem = errorProblem(e, where);
    if (problem) out.bad.push(problem);
    out.error = `${where}: ${(e && e.message) || String(e)}`;
  };
  let session;
  try {
    session = await MoqSession.connect(url, { timeoutMs: CONNECT_MS });
  } catch (e) {
    fail(e, 'connect');
    return out;
  }
  try {
    out.stage = 'subscribe';
    const track = await session.subscribe('demo', '720p');
    for (let g = 0; ; g += 1) {
      if (g > 100) {
        out.bad.push('more than 100 groups from a script of at most 30');
        break;
      }
      out.stage = `nextGroup ${g}`;
      let group;
      try {
        group = await track.nextGroup();
      } catch (e) {
        fail(e, out.stage);
        break;
      }
      if (group === null) {
        out.end = 'null';
        break;
      }
      if (typeof group !== 'object' || !Number.isSafeInteger(group.sequence)) {
        out.bad.push(`nextGroup gave ${String(group)}`);
        break;
      }
      const got = { sequence: group.sequence, frameStart: group.frameStart, objects: [] };
      out.groups.push(got);
      for (let o = 0; ; o += 1) {
        if (o > 1000) {
          out.bad.push('more than 1000 objects from a group of at most 303');
          break;
        }
        out.stage = `group ${group.sequence} object ${o}`;
        let object;
        try {
          object = await group.nextObject();
        } catch (e) {
          fail(e, out.stage);
          break;
        }
        if (object === null) break;
        if (!(object instanceof Uint8Array)) {
          out.bad.push(`${out.stage}: not bytes: ${String(object)}`);
          break;
        }
        if (object.byteLength > MAX_OBJECT) out.bad.push(`${out.stage}: ${object.byteLength} bytes, over the cap`);
        out.objects += 1;
        got.objects.push(keep ? hex(object) : object.byteLength);
      }
    }
  } catch (e) {
    fail(e, out.stage);
  } finally {
    out.stage = 'close';
    session.close();
    await session.closed.then(() => {}, (e) => {
      const problem = errorProblem(e, 'closed');
      if (problem) out.bad.push(problem);
    });
  }
  out.stage = 'done';
  return out;
}

async function round(seed, sc, applied, keep = false, limitMs = ROUND_LIMIT_MS) {
  inflight.add(seed);
  let timer;
  const limit = new Promise((resolve) => {
    timer = setTimeout(() => resolve('hang'), limitMs);
  });
  const running = play(seed, sc, keep).then((o) => o, (e) => ({ seed, bad: [`the round threw: ${(e && e.stack) || e}`] }));
  const t0 = performance.now();
  const result = await Promise.race([running, limit]);
  clearTimeout(timer);
  inflight.delete(seed);
  const ms = Math.round(performance.now() - t0);
  // A round that blocked the page's thread past the limit may still win the race after.
  if (result === 'hang' || ms > limitMs) {
    return { seed, applied, hang: true, ms, bad: [] };
  }
  result.applied = applied;
  result.ms = ms;
  return result;
}

async function main() {
  const started = performance.now();
  const base = baseScenario();
  base.rnd = mulberry32(1);
  const want = expected(base);
  const unmutated = await round(0, base, [], true);

  const results = [];
  // The regression cases first, one at a time (a dripped object takes seconds by itself).
  for (const { seed, name, mutations } of REGRESSIONS) {
    const { sc, applied } = mutatedScenario(seed, mutations);
    const r = await round(seed, sc, applied, false, REGRESSION_LIMIT_MS);
    r.regression = name;
    results.push(r);
  }
  const seeds = Array.from({ length: ROUNDS }, (_, i) => seedOf(i));
  let next = 0;
  const worker = async () => {
    while (next < seeds.length) {
      const seed = seeds[next];
      next += 1;
      const { sc, applied } = mutatedScenario(seed);
      results.push(await round(seed, sc, applied));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // Late unhandled rejections of the last rounds get a moment to show.
  await new Promise((resolve) => setTimeout(resolve, 1500));

  const tally = { rounds: results.length, connectFailed: 0, ended: 0, failed: 0, objects: 0, errors: {}, mutations: {} };
  for (const r of results) {
    tally.objects += r.objects || 0;
    if (r.error && r.error.startsWith('connect')) tally.connectFailed += 1;
    else if (r.error) tally.failed += 1;
    else if (r.end === 'null') tally.ended += 1;
    if (r.error) {
      const kind = r.error.replace(/[0-9]+/g, 'N').slice(0, 90);
      tally.errors[kind] = (tally.errors[kind] || 0) + 1;
    }
    for (const m of r.applied || []) tally.mutations[m] = (tally.mutations[m] || 0) + 1;
  }
  return {
    ms: Math.round(performance.now() - started),
    realWebTransport: typeof RealWebTransport === 'function',
    unmutated,
    want,
    hangs: results.filter((r) => r.hang).map((r) => ({ seed: r.seed, applied: r.applied, ms: r.ms, regression: r.regression })),
    bad: results.filter((r) => r.bad && r.bad.length).map((r) => ({ seed: r.seed, applied: r.applied, bad: r.bad })),
    regressions: results.filter((r) => r.regression).map((r) => ({
      name: r.regression, seed: r.seed, ms: r.ms, objects: r.objects, error: r.error, end: r.end,
    })),
    unhandled,
    tally,
  };
}

// After the load event, so that WebDriver has the page even if a round blocks its thread.
const loaded = new Promise((resolve) => {
  if (document.readyState === 'complete') resolve();
  else window.addEventListener('load', resolve);
});
loaded.then(() => new Promise((resolve) => setTimeout(resolve, 0))).then(main).then(
  (r) => { window.result = r; },
  (e) => { window.result = { failed: `${e && e.stack || e}` }; },
);
"##;

/// Serves the test page, its script and moq.js on 127.0.0.1; returns the origin.
async fn serve() -> String {
    let script = |body: &'static str| {
        move || async move {
            (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                body,
            )
        }
    };
    let app = Router::new()
        .route(
            "/moq-hostile.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    TEST_PAGE,
                )
            }),
        )
        .route("/moq-hostile.js", get(script(TEST_SCRIPT)))
        .route(
            "/moq.js",
            get(script(include_str!("../../../web/src/moq.js"))),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_js_survives_mutated_relay_bytes_in_chromium() {
    let origin = serve().await;
    let mut browser = Browser::start(800, 600).await.expect("browser");
    let page = format!("{origin}/moq-hostile.html?rounds={ROUNDS}");
    browser.goto(&page).await.expect("open the page");
    let outcome = browser
        .wait_for(
            "every round is done",
            "return window.result || null",
            Value::Null,
            PAGE_LIMIT,
            |_| Ok(()),
        )
        .await;
    let events = browser.events().await.expect("page events").clone();
    let result = match outcome {
        Ok(result) => result,
        Err(error) => panic!(
            "{page}: {error:#} (a round that blocks the page's thread shows as WebDriver \
             timing out)\npage notes:\n{}\nuncaught:\n{}",
            events.notes.join("\n"),
            events.errors.join("\n")
        ),
    };
    browser.quit().await.expect("quits");
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();

    // The unmutated relay: exactly the groups and frames it sent, then the track's end.
    let unmutated = &result["unmutated"];
    assert_eq!(
        unmutated["bad"],
        Value::Array(Vec::new()),
        "{}",
        pretty(unmutated)
    );
    assert_eq!(unmutated["error"], Value::Null, "{}", pretty(unmutated));
    assert_eq!(unmutated["end"], "null", "{}", pretty(unmutated));
    assert_eq!(unmutated["groups"], result["want"], "the unmutated round");
    assert_eq!(
        result["want"].as_array().map(Vec::len),
        Some(3),
        "{}",
        pretty(&result["want"])
    );

    let hangs = result["hangs"].as_array().expect("hangs");
    assert!(
        hangs.is_empty(),
        "rounds that did not settle in time (by seed): {}",
        pretty(&result["hangs"])
    );
    assert!(
        result["bad"].as_array().expect("bad").is_empty(),
        "rounds with a non-Error, a message-less Error or an object over the cap: {}",
        pretty(&result["bad"])
    );
    assert!(
        result["unhandled"]
            .as_array()
            .expect("unhandled")
            .is_empty(),
        "uncaught errors in the page (with the seeds in flight): {}",
        pretty(&result["unhandled"])
    );
    assert!(
        events.errors.is_empty(),
        "uncaught errors in the page's log: {:?}",
        events.errors
    );

    // The rounds did run, and their mutations mattered both ways.
    let tally = &result["tally"];
    // The dripped object arrives whole, with the rest of the track.
    let drip = &result["regressions"][0];
    assert_eq!(drip["name"], "dripped object", "{}", pretty(drip));
    assert_eq!(drip["objects"], 9, "{}", pretty(drip));
    assert_eq!(drip["end"], "null", "{}", pretty(drip));
    let regressions = result["regressions"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(tally["rounds"], ROUNDS + regressions, "{}", pretty(tally));
    for outcome in ["connectFailed", "ended", "failed"] {
        assert!(
            tally[outcome].as_u64().unwrap_or(0) > 0,
            "no round {outcome}: {}",
            pretty(tally)
        );
    }
    eprintln!(
        "moq_hostile: {} rounds in {} ms (regression cases: {}): {}",
        ROUNDS,
        result["ms"],
        result["regressions"],
        pretty(tally)
    );
}
