// Live playback over Media over QUIC (issue 48): the player's other path beside hls.js.
//
// A node publishes every public live stream to a MoQ relay (broadcast::moq), and every
// private one too when the relay asks the node who may read it; the node says where
// viewers reach it at /moq/v1/endpoint. A public stream is a broadcast named as the
// stream, a private one `{privatePrefix}{stream}`, read with a grant the node minted for the
// viewer's playback token in the session URL's query (`?grant=…`; WebTransport sends no
// headers), which the relay's auth server checks at connect. A stream is `catalog.json`
// (the renditions, each with its init segment and the signed statement of it), a track
// per rendition (a group per segment, an object per LL-HLS
// part: the very bytes `{seq}.{part}.m4s` serves) and `{rendition}.sig` beside it (the same
// groups: object 0 the segment's part-key delegation, object n + 1 part n's statement).
//
// Nothing reaches Media Source Extensions before the same verifier as LL-HLS checked it
// (verify.js's VerificationSession: statements, part keys, the root, revocation, C2PA),
// under the URL the fragment has over HLS, so a verdict, a refusal and the tally read the
// same on both paths. A refused object is fetched again over HTTP from the page's origin
// (the part under its LL-HLS URL, with its statement), as the LL-HLS path fetches a
// refused fragment again: a relay that alters what it forwards costs the viewer a request,
// not a stall. When no clean copy verifies either, the rest of the group is skipped (it
// decodes from that part on) and playback goes on at the next group, which starts with a
// keyframe. The catalog is not signed; what it says only decides what is asked for
// and fed, and every byte fed is checked against a signed statement.
//
// Rungs: every rendition's groups are numbered by the same media sequence and each starts
// with a keyframe, so a switch happens between two groups. The new rung's init segment is
// checked and its tracks subscribed while the old one plays on; at the next group boundary
// the old tracks are let go, the source buffer takes the new init segment (and codec
// string), and the new track is read from the group after the last one played. The
// viewer picks a rung in the quality menu, or leaves it to `RungChooser` (auto): start on
// the lowest rung (the smallest objects, the quickest start), one rung up after a stretch
// that played without a stall, one rung down on a stall, and a stall makes the next step
// up wait twice as long as the last.
//
// Relay loss: a relay that dies leaves the QUIC connection silent, not closed, so after
// SILENCE_MS without an object (or when the session closes, or the track ends: the edge
// it came through died) the player dials again (through the QUIC door, to a relay that
// answers), subscribes the rung that plays again and feeds the same source buffer. Until
// the new session is subscribed the silent one is read on: a live relay whose route died
// splices the track onto another route and may speak again first. The cut group is read
// on from the object after the last one played, so what was buffered plays on and the
// verifier sees no jump; objects the relay no longer has at a group's head are fetched
// over HTTP and checked like any other (`fetched`). Groups the new subscription starts
// past are counted (`skipped`) and continuity starts over at the next keyframe.
//
// The bridge: silence a little longer than an object's media (before SILENCE_MS) is
// bridged over HTTP. The objects after the last one played are fetched from the edges as
// the LL-HLS path fetches parts (a node holds the request for a part that may yet come
// until it exists, and answers 404 for one that never will: then the next group's first
// is asked for), checked like any other and fed (`bridged`), one after another, until the
// relay speaks again; its objects are then read past what the bridge fed. A relay that
// died, or an edge under the relay's route (the relay waits out its session, then routes
// from the next group), so costs the buffer no more than a part's fetch. The bridge feeds
// the buffer only; silence is still measured from the relay's last object, so the dials
// again, and the rules on how many, are what they were.
//
// Publish sessions: a publisher that reconnects within the ingest's grace period goes on
// with the same stream (the media sequence goes on, the discontinuity sequence grows) under
// a new publish session, whose init segment is another (its own C2PA manifest and session
// keys, maybe other encoder settings). The catalog names each rendition's session, every
// part statement its own. An object of another session than the init segment in the
// buffer is not fed before the catalog is read again: when it describes that session, its
// init segment is checked and appended and the new session's media is placed right after
// what is buffered (each session's timestamps start over). When it does not: before
// anything played, the group is passed over (a session gone by, which a viewer joining at
// a reconnect meets at the track's live edge); once playing, the object is checked as it
// is (refused and fetched again if a relay forged what it says).
//
// Latency: the playhead is held about one and a half objects behind the newest media
// (objects come whole), playing a little faster when it fell further behind.

import { MoqSession } from './moq.js';
import {
  MAX_EVENT_STATEMENT_LEN,
  VerificationSession,
  decodeEnvelope,
  decodeStatement,
  fetchBounded,
} from './verify.js';

/** Where a node says viewers reach the streams over MoQ. */
export const MOQ_ENDPOINT_PATH = '/moq/v1/endpoint';
/** Largest endpoint document and catalog read. */
const MAX_ENDPOINT = 4 * 1024;
const MAX_CATALOG = 256 * 1024;
/** Media kept behind the playhead. */
const BACK_BUFFER_S = 30;
/** How far behind the newest media the playhead may fall before it jumps ahead. */
const MAX_BEHIND_S = 1.5;
/**
 * Where it lands then, and where it is held: this far behind the newest media, one and a
 * half objects (the media an object adds, measured) and a little, within these bounds.
 * Objects come whole, so the newest media is up to an object ahead of the playhead's
 * need; 0.333 s parts land at the upper bound, finer objects closer.
 */
const LAND_BEHIND_MIN_S = 0.15;
const LAND_BEHIND_MAX_S = 0.4;
/** Further behind than where it lands by more than this, it plays a little faster. */
const CATCH_UP_SLACK_S = 0.15;
const CATCH_UP_RATE = 1.1;
/**
 * How old a group the relay may still send us while a newer one exists: without it, a
 * viewer a moment behind has the group it is reading reset ("old") when the next begins.
 */
const MAX_AGE_MS = 2000;
/** How long to wait for the first verified object before giving up on MoQ. */
const FIRST_OBJECT_MS = 10000;
// Once playing, how long without an object before the relay is taken for lost: a relay
// that died does not close the viewer's QUIC connection (another relay cannot reset it,
// and the idle timeout is tens of seconds), so silence is the sign. The session is then
// dialled again (through the QUIC door, to a relay that answers) and the rendition
// subscribed again, into the same buffer: what is buffered plays on meanwhile, and the
// group that was cut is read on from the object after the last one played. Objects come
// every part (0.33 s): two of them missing. The QUIC door keeps new flows off a relay
// within 0.45 s of its death (loadbalancer/src/quic_door/relays.rs), so the dial goes to
// one that answers.
const SILENCE_MS = 700;
// The same while the rest of a group is skipped (an object no clean copy verified): the
// next object is the next group's first, up to a segment (2 s) later.
const SKIPPING_SILENCE_MS = 3000;
/**
 * When the bridge over HTTP begins: after this many objects' media (measured) without an
 * object from the relay, and no sooner than BRIDGE_AFTER_MIN_MS. Objects come whole, each
 * as its media is done, so one late by a third of its media is already a sign.
 */
const BRIDGE_AFTER_OBJECTS = 1.3;
const BRIDGE_AFTER_MIN_MS = 250;
/** After a bridge that fed nothing (the edges did not answer, the stream ended): the wait before the next. */
const BRIDGE_AGAIN_MS = 500;
/** How often silence is looked for. */
const WATCH_EVERY_MS = 100;
/** Resumes told in `state.resumeLog`, the newest last. */
const MAX_RESUMES_TOLD = 8;
/**
 * Routes lost since the last object played (a dial that failed, a session or track the
 * relay ended or refused) that are dialled again; one more, and playback over MoQ is given
 * up. Silence alone does not count when the dial again subscribed: the track stays open,
 * so the relay still routes the broadcast and its source is only quiet (a publisher's
 * encoder behind real time, its network stalling). The silence allowed before the next dial then doubles with each
 * such resume, at most MAX_QUIET_DOUBLINGS times (0.7, 1.4, 2.8, 5.6 s), as an LL-HLS
 * player keeps reloading a playlist that does not grow. When the publisher is gone the
 * node ends the broadcast, and the relay the tracks: those count.
 */
const MAX_RESUMES = 5;
const MAX_QUIET_DOUBLINGS = 3;
/**
 * How long a dial again may take (the first: moq.js's 10 s): through the QUIC door it
 * takes tens of milliseconds, unless the door still sends it to the relay that died.
 * Each dial again is two connections at once, from two ports, so two flows the door
 * places on their own: the first session up is kept, the other closed.
 */
const RESUME_DIAL_MS = 1500;
const RESUME_DIALS_AT_ONCE = 2;
/** The wait before the next dial when one failed, times the dials so far. */
const RESUME_BACKOFF_MS = 200;
/** Auto rung choice: how long playback must go without a stall before one rung up. */
const UP_AFTER_MS = 6000;
/** After a stall, the wait before the next step up: doubled by each stall, at most MAX. */
const HOLD_AFTER_STALL_MS = 15000;
const MAX_HOLD_MS = 120000;
/** Largest part and statement fetched again over HTTP. */
const MAX_PART = 16 * 1024 * 1024;
const MAX_STATEMENT = 64 * 1024;
/**
 * How long a part of a new publish session waits for the catalog that describes it (the
 * node sends it when the session announces its renditions, before their first parts).
 */
const CATALOG_WAIT_MS = 2000;

/**
 * The MoQ endpoint this page's origin serves, or null: no WebTransport in this browser, no
 * endpoint (404), or one that does not read as `{ url: "https://…", certificateHashes: [hex] }`.
 * `privatePrefix` (`"_private/"`), when the relay's auth takes grants: a private stream is
 * the broadcast `{privatePrefix}{stream}`, read with `?grant=…` in the session's URL (a
 * grant the node mints for the viewer's playback token at `/live/{stream}/moq-grant`).
 */
export async function moqEndpoint(origin = globalThis.location.origin) {
  if (typeof globalThis.WebTransport !== 'function') return null;
  let answer;
  try {
    answer = await fetch(new URL(MOQ_ENDPOINT_PATH, origin), { cache: 'no-cache' });
  } catch {
    return null;
  }
  if (!answer.ok) return null;
  const text = await answer.text();
  if (text.length > MAX_ENDPOINT) return null;
  let endpoint;
  try {
    endpoint = JSON.parse(text);
  } catch {
    return null;
  }
  const hashes = Array.isArray(endpoint.certificateHashes) ? endpoint.certificateHashes : [];
  if (typeof endpoint.url !== 'string' || !endpoint.url.startsWith('https://')) return null;
  if (!hashes.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/i.test(h))) return null;
  const prefix = typeof endpoint.privatePrefix === 'string' && /^[A-Za-z0-9_.-]{1,32}\/$/.test(endpoint.privatePrefix)
    ? endpoint.privatePrefix
    : null;
  return { url: endpoint.url, certificateHashes: hashes, privatePrefix: prefix };
}

const b64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * The first of `dials` (promises of sessions) to connect; the others are closed when they
 * connect. Rejects with the last failure when none does.
 */
function firstSession(dials) {
  if (dials.length === 1) return dials[0];
  return new Promise((resolve, reject) => {
    let won = false;
    let failed = 0;
    for (const dial of dials) {
      dial.then(
        (session) => {
          if (won) session.close();
          else {
            won = true;
            resolve(session);
          }
        },
        (err) => {
          failed += 1;
          if (failed === dials.length) reject(err);
        },
      );
    }
  });
}

/** Waits for `event` on `target` once. */
const once = (target, event) => new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));

/** The renditions of a catalog, lowest bitrate first, that this browser can decode. */
export function playableRenditions(catalog) {
  const video = (catalog && catalog.video && catalog.video.renditions) || {};
  const ours = (catalog && catalog.sealcast && catalog.sealcast.renditions) || {};
  const ms = globalThis.MediaSource;
  const list = [];
  for (const [name, config] of Object.entries(video)) {
    const extra = ours[name];
    if (!extra || !config || !config.container || config.container.kind !== 'cmaf') continue;
    if (typeof config.container.init !== 'string' || typeof extra.codecs !== 'string') continue;
    const mime = `video/mp4; codecs="${extra.codecs}"`;
    if (ms && typeof ms.isTypeSupported === 'function' && !ms.isTypeSupported(mime)) continue;
    list.push({
      name,
      mime,
      bandwidth: Number(extra.bandwidth) || Number(config.bitrate) || 0,
      height: Number(config.codedHeight) || 0,
      init: config.container.init,
      initStatement: typeof extra.initStatement === 'string' ? extra.initStatement : null,
      statements: typeof extra.statements === 'string' ? extra.statements : `${name}.sig`,
      // The publish session of the init segment (null: a node that does not say).
      session: typeof extra.session === 'string' && /^[0-9a-f]{16}$/.test(extra.session) ? extra.session : null,
    });
  }
  return list.sort((a, b) => a.bandwidth - b.bandwidth);
}

/**
 * The automatic rung choice, sans I/O: told when playback started, stalled, or went on
 * (with the time, in milliseconds), it answers the index of the rung to play, over
 * `count` rungs sorted lowest bitrate first.
 */
export class RungChooser {
  constructor(count, now) {
    this.count = count;
    this.index = 0;
    this.since = now; // when the current rung began to play, or the last stall
    this.hold = UP_AFTER_MS; // how long to play without a stall before one rung up
  }

  /** Playback stalled (the buffer ran dry): one rung down, and wait longer to climb. */
  stalled(now) {
    this.index = Math.max(0, this.index - 1);
    this.since = now;
    this.hold = Math.min(MAX_HOLD_MS, Math.max(HOLD_AFTER_STALL_MS, this.hold * 2));
    return this.index;
  }

  /** Playback goes on: one rung up once it went `hold` without a stall. */
  playing(now) {
    if (this.index + 1 < this.count && now - this.since >= this.hold) {
      this.index += 1;
      this.since = now;
    }
    return this.index;
  }

  /** The viewer (or a fallback) put playback on rung `index`. */
  moved(index, now) {
    this.index = Math.min(Math.max(0, index), Math.max(0, this.count - 1));
    this.since = now;
    return this.index;
  }
}

/**
 * One live stream played over MoQ into a <video>. `trust`, `tally` and `playback` are what
 * the LL-HLS path gives its VerificationSession (openTrust's promise, the page's
 * `sealcast.verification`, the URL the viewer opened); `onEvent(name, detail)` hears
 * 'playing', 'refused', 'ended' and 'closed'. `start()` resolves once the first verified
 * object is in the buffer and rejects when MoQ cannot play the stream (the caller falls
 * back to LL-HLS).
 */
export class MoqPlayback {
  constructor({ video, endpoint, stream, token = null, trust, tally, playback, rendition = null, onEvent = () => {} }) {
    this.video = video;
    this.endpoint = endpoint;
    this.stream = stream;
    // A private stream: its broadcast's name, and the token that opens it (in the
    // session's URL, and on the LL-HLS URLs its fragments are verified under and fetched
    // again from, as the LL-HLS path has them).
    this.token = token;
    this.broadcast = token ? `${endpoint.privatePrefix || ''}${stream}` : stream;
    this.wanted = rendition;
    this.onEvent = onEvent;
    this.session = null;
    this.tracks = [];
    this.closed = false;
    this.delegations = new Map(); // "rendition/sequence" -> the part-key delegation's bytes
    // What plays: `auto` (the chooser picks) or the viewer's rung; `switches` counts the
    // rung changes made.
    // `lastGroup`/`lastIndex`: the group played and its last object in the buffer;
    // `skipped`: groups passed over because this session never got them; `fetched`:
    // objects the relay lacked at a group's head, fetched over HTTP;
    // `resumes`: sessions dialled again after the relay fell silent or closed, the last
    // MAX_RESUMES_TOLD told in `resumeLog`, the newest last (why, the group and object
    // played last, the dials it took, how long until the session was up, the tracks
    // subscribed again and the next object played, why a dial failed, and the first
    // groups that came before that object: sequence, first object, ms since);
    // `sessions`: the publish sessions played (one more at each reconnect followed);
    // `bridges`: the times the relay's silence was bridged over HTTP, `bridged`: the
    // objects fed so, the last MAX_RESUMES_TOLD bridges told in `bridgeLog` (when it
    // began, ms after the relay's last object; from which object; the objects fed; when
    // the first was fed, ms after it began; how it ended).
    this.state = { rendition: '', groups: 0, objects: 0, refused: 0, repaired: 0, lastGroup: -1, lastIndex: -1, skipped: 0, fetched: 0, auto: rendition === null, switches: 0, resumes: 0, resumeLog: [], sessions: 0, bridges: 0, bridged: 0, bridgeLog: [] };
    /** The playable renditions, lowest bitrate first (after start). */
    this.renditions = [];
    this.chooser = null;
    this.current = null; // { rendition, media, statements }: the tracks played
    this.next = null; // the same, prepared for the next group boundary
    this.preparing = null; // the rendition being prepared
    this.bufferMime = ''; // what the source buffer decodes (changeType changes it)
    this.onWaiting = () => this.stalled();
    // Whether the video played at all: the `waiting` before its first frame is no stall.
    this.played = false;
    this.onPlaying = () => {
      this.played = true;
    };
    this.loads = 0;
    this.objectUrl = '';
    this.lastObjectAt = performance.now();
    // When the relay last sent an object: what the bridge's silence is measured from
    // (a dial again restarts `lastObjectAt`'s count, not this one).
    this.heardAt = this.lastObjectAt;
    this.objectSeconds = LAND_BEHIND_MAX_S; // the media an object adds, averaged
    this.watchdog = 0;
    this.resuming = null; // the promise of a session being dialled again
    this.routesLost = 0; // dials failed and tracks or sessions ended since the last object
    this.quietResumes = 0; // resumes for silence that subscribed since the last object
    this.abandoned = -1; // the group whose rest is skipped (an object no copy verified)
    this.restamp = false; // the next object is a new session's first: placed after the buffer
    this.following = false; // a new session's catalog is awaited (no silence meanwhile)
    this.bridging = null; // the bridge over HTTP that runs: { controller, done }
    this.bridgeAgainAt = 0; // no bridge begins before (performance.now())
    // What checks and feeds objects (the pump, the bridge) does so one at a time, each
    // deciding inside whether its object is still the next to play: no object is checked
    // twice (the verifier would see it out of order) nor fed twice.
    this.serial = Promise.resolve();
    this.verifying = new VerificationSession(trust, tally, playback, {
      delegation: (url) => this.delegationAt(url),
    });
  }

  /** The delegation a part statement's URL asks for, from the statements track. */
  delegationAt(url) {
    const m = /\/live\/[^/]+\/([^/]+)\/(\d+)\.partkey$/.exec(new URL(url).pathname);
    if (!m) return null;
    return this.delegations.get(`${decodeURIComponent(m[1])}/${m[2]}`) || null;
  }

  /**
   * A private stream's grant for the relay: the node checks the token as it checks every
   * LL-HLS request (the stream, this viewer's address, the operator's hook) and signs a
   * grant the relays take, since behind the QUIC door a relay sees the door's address,
   * not the viewer's. Never cached.
   */
  async grant() {
    const s = encodeURIComponent(this.stream);
    const url = new URL(`/live/${s}/moq-grant?token=${encodeURIComponent(this.token)}`, globalThis.location.href);
    const response = await fetch(url, { cache: 'no-store', credentials: 'omit' });
    if (!response.ok) throw new Error(`no MoQ grant (${response.status})`);
    const body = await response.json();
    if (typeof body.grant !== 'string' || !/^[0-9]{1,20}\.[A-Za-z0-9_-]{1,64}\.[0-9a-f]{64}$/.test(body.grant)) {
      throw new Error('a MoQ grant that is not one');
    }
    return body.grant;
  }

  /** The URL a fragment has over LL-HLS, under which it is verified. */
  urlOf(rendition, file) {
    const s = encodeURIComponent(this.stream);
    const query = this.token ? `?token=${encodeURIComponent(this.token)}` : '';
    return new URL(`/live/${s}/${encodeURIComponent(rendition)}/${file}${query}`, globalThis.location.href).href;
  }

  /** A session with the relay (a private stream's with a fresh grant), made the current one. */
  async dial(timeoutMs = undefined, atOnce = 1) {
    const url = new URL(this.endpoint.url);
    if (this.token) url.searchParams.set('grant', await this.grant());
    const connect = () =>
      MoqSession.connect(url.href, { certificateHashes: this.endpoint.certificateHashes, timeoutMs });
    const session = await firstSession(Array.from({ length: atOnce }, connect));
    if (this.closed) {
      session.close();
      throw new Error('playback stopped while dialling');
    }
    this.session = session;
    const lost = () => {
      if (this.session === session) this.lost('the relay closed the session');
    };
    session.closed.then(lost, lost);
  }

  async start() {
    await this.dial();
    const catalogTrack = await this.subscribe('catalog.json');
    let renditions;
    try {
      renditions = await nextCatalog(catalogTrack);
    } finally {
      this.release([catalogTrack]);
    }
    if (!renditions) throw new Error('no usable catalog');
    if (!renditions.length) throw new Error('no rendition this browser can play');
    this.renditions = renditions;
    const pick = renditions.find((r) => r.name === this.wanted) || renditions[0];
    this.chooser = new RungChooser(renditions.length, performance.now());
    this.chooser.moved(renditions.indexOf(pick), performance.now());

    const opened = await this.open(pick);
    const source = new MediaSource();
    this.objectUrl = URL.createObjectURL(source);
    this.video.src = this.objectUrl;
    await once(source, 'sourceopen');
    this.source = source;
    this.buffer = source.addSourceBuffer(pick.mime);
    this.bufferMime = pick.mime;
    await this.append(opened.init);
    this.current = opened;
    this.state.rendition = pick.name;
    this.state.sessions = 1;
    this.video.addEventListener('waiting', this.onWaiting);
    this.video.addEventListener('playing', this.onPlaying);

    let first;
    const playing = new Promise((resolve) => {
      first = resolve;
    });
    this.pump(first).catch((err) => this.finish('ended', err));
    const timeout = new Promise((_, reject) => {
      setTimeout(() => reject(new Error('no verified object in time')), FIRST_OBJECT_MS);
    });
    await Promise.race([playing, timeout]);
    this.watchdog = setInterval(() => this.watch(), WATCH_EVERY_MS);
  }

  /** Bridges the relay's silence over HTTP, and dials again when it lasts. */
  watch() {
    if (this.closed || this.following) return;
    const quiet = performance.now() - this.lastObjectAt;
    const unheard = performance.now() - this.heardAt;
    const bridgeAfter = Math.max(BRIDGE_AFTER_MIN_MS, BRIDGE_AFTER_OBJECTS * this.objectSeconds * 1000);
    const bridgeable = this.state.objects > 0 && this.abandoned !== this.state.lastGroup && performance.now() >= this.bridgeAgainAt;
    if (!this.bridging && unheard > bridgeAfter && bridgeable) {
      this.bridge();
    }
    if (this.resuming) return;
    const base = this.abandoned === this.state.lastGroup ? SKIPPING_SILENCE_MS : SILENCE_MS;
    const limit = base * 2 ** Math.min(this.quietResumes, MAX_QUIET_DOUBLINGS);
    if (quiet > limit) this.resume(`no object for ${Math.round(quiet)} ms`, { lost: false });
  }

  /** The session ended under us: before the first object the start fails, after it we dial again. */
  lost(why) {
    if (this.watchdog) this.resume(why, { lost: true });
    else this.finish('ended', new Error(why));
  }

  /**
   * The relay is lost (silent or closed): a new session, and the rendition that plays
   * subscribed again on it, while the buffer plays on. `pump` waits for it and reads on
   * from the object after the last one played. A switch that was prepared is dropped.
   * `lost`: the route is lost (a session or track ended or failed), else the relay only
   * fell silent (the session and tracks are still up). Once more than MAX_RESUMES routes
   * were lost with no object between them, playback ends ('ended').
   */
  resume(why, { lost }) {
    if (this.closed || this.resuming) return;
    if (lost) this.routesLost += 1;
    this.state.resumes += 1;
    const began = performance.now();
    const told = { why, at: [this.state.lastGroup, this.state.lastIndex], dials: 0, dialMs: null, ms: null, objectMs: null, failures: [], groups: [], began };
    this.state.resumeLog.push(told);
    if (this.state.resumeLog.length > MAX_RESUMES_TOLD) this.state.resumeLog.shift();
    console.warn(`sealcast: MoQ ${why}: dialling again`);
    const tracks = this.tracks;
    this.tracks = [];
    this.next = null;
    this.preparing = null;
    // The silent session is let go only once a new one is subscribed (or the dials gave
    // up): when it was the route behind a live relay that failed (an edge died), the relay
    // splices the track onto another route, and the group that plays goes on over the old
    // session while the new one is dialled.
    const silent = this.session;
    this.session = null;
    this.resuming = (async () => {
      try {
        for (;;) {
          if (this.routesLost > MAX_RESUMES) {
            throw new Error(`${why}; ${this.routesLost} dials or routes failed since the last object`);
          }
          told.dials += 1;
          try {
            await this.dial(RESUME_DIAL_MS, RESUME_DIALS_AT_ONCE);
            told.dialMs = Math.round(performance.now() - began);
            const current = this.current;
            const [media, statements] = await Promise.all([
              this.subscribe(current.rendition.name),
              this.subscribe(current.rendition.statements),
            ]);
            Object.assign(current, { media, statements, pending: new Map(), after: undefined });
            if (!lost) this.quietResumes += 1;
            this.lastObjectAt = performance.now();
            told.ms = Math.round(this.lastObjectAt - began);
            return;
          } catch (err) {
            // What the failed dial opened is closed before the next.
            for (const track of this.tracks.splice(0)) track.close();
            if (this.session) this.session.close();
            this.session = null;
            if (this.closed) return;
            console.warn('sealcast: MoQ dial again failed', err);
            if (told.failures.length < 5) told.failures.push(String(err.message || err));
            this.routesLost += 1;
            await new Promise((resolve) => setTimeout(resolve, RESUME_BACKOFF_MS * this.routesLost));
          }
        }
      } finally {
        for (const track of tracks) track.close();
        if (silent) silent.close();
      }
    })().then(
      () => {
        this.resuming = null;
      },
      (err) => {
        this.resuming = null;
        this.finish('ended', err);
      },
    );
  }

  async subscribe(track) {
    const subscription = await this.session.subscribe(this.broadcast, track, { maxAgeMs: MAX_AGE_MS });
    this.tracks.push(subscription);
    return subscription;
  }

  /**
   * A rendition made ready to play: its init segment checked against its statement, its
   * media and statements tracks subscribed. Throws when the init segment is refused.
   */
  async open(rendition) {
    const { init, verdict } = await this.checkInit(rendition);
    if (!verdict.ok) throw new Error(`the init segment of ${rendition.name} was refused: ${verdict.reason}`);
    const media = await this.subscribe(rendition.name);
    const statements = await this.subscribe(rendition.statements);
    // `pending`: statements groups that came before their media group; `after`: right
    // after a switch, the last group played on the rung before; `session`: the publish
    // session of the init segment.
    return { rendition, init, session: rendition.session, media, statements, pending: new Map(), after: undefined };
  }

  /** A catalog rendition's init segment (bytes) and the verdict on it. */
  async checkInit(rendition) {
    const init = b64(rendition.init);
    const verdict = await this.verifying.check({
      url: this.urlOf(rendition.name, 'init.mp4'),
      bytes: init,
      sidecar: rendition.initStatement ? b64(rendition.initStatement) : null,
      sequence: null,
      part: null,
      discontinuity: 0,
      load: (this.loads += 1),
    });
    return { init, verdict };
  }

  /**
   * The viewer's pick: the rendition named `name`, or null for the automatic choice.
   * Takes effect at the next group boundary.
   */
  choose(name) {
    const index = this.renditions.findIndex((r) => r.name === name);
    this.state.auto = index < 0;
    if (index >= 0) {
      this.chooser.moved(index, performance.now());
      this.prepare(this.renditions[index]);
    }
  }

  /** Playback stalled: in auto, one rung down. */
  stalled() {
    // Not a stall: the start, or the playhead moved on purpose (keepUp's jump).
    if (this.closed || !this.state.auto || !this.chooser || !this.played || this.video.seeking) return;
    this.prepare(this.renditions[this.chooser.stalled(performance.now())]);
  }

  /** Subscribes `rendition` for the next boundary, unless it plays or is on its way. */
  prepare(rendition) {
    if (!rendition || this.closed || !this.current) return;
    if (rendition === this.current.rendition) {
      // Back to what plays before the switch happened: nothing to switch to.
      if (this.next) this.release([this.next.media, this.next.statements]);
      this.next = null;
      this.preparing = null;
      return;
    }
    if ((this.next && this.next.rendition === rendition) || this.preparing === rendition) return;
    this.preparing = rendition;
    this.open(rendition).then(
      (opened) => {
        if (this.closed || this.preparing !== rendition) {
          this.release([opened.media, opened.statements]);
          return;
        }
        if (this.next) this.release([this.next.media, this.next.statements]);
        this.next = opened;
        this.preparing = null;
      },
      (err) => {
        if (this.preparing === rendition) this.preparing = null;
        console.warn(`sealcast: MoQ rung ${rendition.name} not taken`, err);
      },
    );
  }

  /** Lets go of tracks (a rendition's: `[opened.media, opened.statements]`). */
  release(tracks) {
    for (const track of tracks) {
      track.close();
      this.tracks = this.tracks.filter((t) => t !== track);
    }
  }

  /** At a group boundary: the prepared rendition takes over, its init segment first. */
  async swap() {
    const next = this.next;
    this.next = null;
    const old = this.current;
    this.release([old.media, old.statements]);
    await this.decodeAs(next.rendition.mime);
    await this.append(next.init);
    // The new track may still hand over the group just played on the old one.
    next.after = this.state.lastGroup;
    this.current = next;
    this.state.rendition = next.rendition.name;
    this.state.switches += 1;
    this.onEvent('switched', { rendition: next.rendition.name, index: this.renditions.indexOf(next.rendition) });
  }

  /** Groups of the media track, each checked against its statements group, into MSE. */
  async pump(first) {
    const started = { first };
    while (!this.closed) {
      if (this.resuming) {
        await this.resuming;
        continue;
      }
      if (this.next) {
        await this.endBridge('a rung switch');
        await this.exclusive(() => this.swap());
      }
      const current = this.current;
      const { rendition, media, statements, pending } = current;
      // Tracks a resume let go of end here: read on from the new ones.
      const replaced = () => this.resuming !== null || this.current.media !== media;
      let group;
      try {
        group = await media.nextGroup();
      } catch (err) {
        if (replaced()) continue;
        if (!this.watchdog) throw err;
        this.resume(`the track failed: ${err.message || err}`, { lost: true });
        continue;
      }
      if (!group) {
        if (replaced()) continue;
        // Once playing, a track that ends is taken as its route lost (the relay let go of
        // it, the edge it came through died): subscribed again like a silent relay, until
        // MAX_RESUMES routes are lost with no object between (the stream really ended).
        if (!this.watchdog) break;
        this.resume('the track ended', { lost: true });
        continue;
      }
      // After a resume, until an object plays: which groups came, from which object, when.
      const told = this.lastResume();
      if (told && told.objectMs === null && told.groups.length < 4) {
        told.groups.push({ sequence: group.sequence, frameStart: group.frameStart, ms: Math.round(performance.now() - told.began) });
      }
      // A rung just switched to may hand over the group already played on the last one.
      if (current.after !== undefined && group.sequence <= current.after) continue;
      current.after = undefined;
      // After a resume: the group that was cut is read on from the object after the last
      // one played (by the bridge too); an older one, or one whose rest was skipped, not at all.
      if (group.sequence < this.state.lastGroup || group.sequence === this.abandoned) continue;
      let sigs;
      try {
        sigs = await this.statementsFor(statements, group.sequence, pending);
      } catch (err) {
        if (replaced()) continue;
        throw err;
      }
      // Before the first object played, a group the relay starts past its head has no
      // keyframe to start from; once playing, playGroup fetches the head over HTTP. The
      // statements group starts with the delegation (object 0).
      if (!sigs) continue;
      if (this.state.lastGroup < 0 && (group.frameStart > 0 || sigs.frameStart > 0)) continue;
      // Where this group is read from, as of now: the bridge may have fed part of it, or
      // past it, meanwhile.
      const from = await this.exclusive(async () => {
        if (group.sequence < this.state.lastGroup) return null;
        if (group.sequence === this.state.lastGroup) return this.state.lastIndex + 1;
        // The last group that played an object: a group begun whose route was cut before
        // its first object (an edge that crashed) played nothing, and is passed over like
        // one never got.
        const played = this.state.lastIndex >= 0 ? this.state.lastGroup : this.state.lastGroup - 1;
        if (this.state.lastGroup >= 0 && group.sequence > played + 1) {
          // Groups this session never got (a resume subscribes at the newest, a relay drops
          // what a slow subscriber missed): live moves on, so continuity starts over at
          // this group's keyframe rather than refusing it. Counted; never backwards (above).
          this.state.skipped += group.sequence - played - 1;
          this.verifying.reposition();
        }
        return 0;
      });
      if (from === null) continue;
      try {
        await this.playGroup(rendition.name, group, sigs, from, started);
      } catch (err) {
        if (replaced()) continue;
        // The relay reset the group (a newer one began while this one was read, "old"):
        // go on with the next, from its keyframe.
        console.warn(`sealcast: MoQ group ${group.sequence} cut short`, err);
        this.verifying.reposition();
      }
      if (this.state.auto && !this.closed) {
        this.prepare(this.renditions[this.chooser.playing(performance.now())]);
      }
    }
    this.finish('ended');
  }

  /**
   * One group from object `from` on (0, or where a resume reads on): the delegation, then
   * each object checked (or repaired) and appended.
   */
  async playGroup(rendition, group, sigs, from, started) {
    if (from === 0) {
      await this.exclusive(async () => {
        if (group.sequence > this.state.lastGroup) this.enter(group.sequence);
      });
    }
    if (sigs.index === 0) {
      const delegation = await sigs.nextObject();
      if (delegation && delegation.length) {
        if (this.delegations.size > 64) this.delegations.clear();
        this.delegations.set(`${rendition}/${group.sequence}`, delegation);
      }
    }
    // Once playing, what the relay lacks at the group's head (a route that changed under
    // it mid-group, a relay that joined late) is fetched over HTTP, as a refused object's
    // clean copy is, and checked the same: continuity, not a wait for the next keyframe.
    const head = this.state.lastGroup >= 0 ? Math.max(group.frameStart, sigs.frameStart - 1) : from;
    for (; from < head && !this.closed; from += 1) {
      const index = from;
      const outcome = await this.exclusive(async () => {
        const place = this.placeOf(group.sequence, index);
        if (place !== 'next') return place;
        const object = await this.repair(rendition, group.sequence, index);
        if (!object) {
          this.abandon(group.sequence);
          return 'abandoned';
        }
        this.state.fetched += 1;
        await this.feed(rendition, object, index, started);
        return 'fed';
      });
      if (outcome === 'past' || outcome === 'abandoned') return;
    }
    // Objects played before a resume (or just fetched): read past, unchecked, not fed again.
    while (sigs.index < from + 1) if (!(await sigs.nextObject())) return;
    while (group.index < from) if (!(await group.nextObject())) return;
    let unfollowed = null; // a session of this group no catalog described: not asked again
    for (let index = from; !this.closed; index += 1) {
      const object = await group.nextObject();
      if (!object) break;
      this.lastObjectAt = performance.now();
      this.heardAt = this.lastObjectAt;
      const sidecar = await sigs.nextObject();
      // The relay speaks again: a bridge over HTTP ends, and what it fed is read past.
      await this.endBridge();
      const outcome = await this.exclusive(async () => {
        const place = this.placeOf(group.sequence, index);
        if (place !== 'next') return place;
        let bytes = object;
        const facts = factsOf(sidecar);
        const { session } = facts;
        const current = this.current.session;
        if (session !== null && current !== null && session !== current && session !== unfollowed) {
          const followed = await this.follow(session);
          this.lastObjectAt = performance.now();
          if (!followed && this.state.objects === 0) {
            // Before anything played, a group of a session the catalog no longer describes
            // (one gone by, still at the track's live edge) is passed over.
            this.abandon(group.sequence);
            return 'abandoned';
          }
          // Once playing, an object that says so and is not (a relay's forgery) is checked
          // as it is: refused, and fetched again over HTTP.
          if (!followed) unfollowed = session;
        }
        const verdict = await this.check(rendition, group.sequence, index, bytes, sidecar, facts);
        if (!verdict.ok) {
          this.state.refused += 1;
          this.onEvent('refused', { sequence: group.sequence, part: index, reason: verdict.reason });
          bytes = await this.repair(rendition, group.sequence, index);
          if (!bytes) {
            this.abandon(group.sequence);
            return 'abandoned';
          }
          this.state.repaired += 1;
        }
        await this.feed(rendition, bytes, index, started);
        return 'fed';
      });
      if (outcome === 'past' || outcome === 'abandoned') break;
    }
  }

  /**
   * Where object `index` of group `sequence` stands against what played: 'next' (or ahead:
   * to be checked and fed), 'fed' (played already, by the bridge) or 'past' (the group is
   * older than the one that plays).
   */
  placeOf(sequence, index) {
    if (sequence < this.state.lastGroup) return 'past';
    if (sequence === this.state.lastGroup && index <= this.state.lastIndex) return 'fed';
    return 'next';
  }

  /** Group `sequence` begins to play. */
  enter(sequence) {
    this.state.groups += 1;
    this.state.lastGroup = sequence;
    this.state.lastIndex = -1;
  }

  /** Runs `task` once every task handed here before it has ended (see `serial`). */
  exclusive(task) {
    const run = this.serial.then(task);
    this.serial = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /**
   * The relay is silent: the objects after the last one played, fetched over HTTP, checked
   * and fed one after another, until the relay speaks again (`endBridge`), a fetch fails
   * (the watch begins another while the silence lasts) or playback ends. Past a group's
   * last object (a part that never will be: 404) comes the next group's first. It ends
   * at an object of another publish session than the buffer's (the pump follows those),
   * and when the rung changed under it.
   */
  bridge() {
    const controller = new AbortController();
    const rendition = this.current.rendition.name;
    const session = this.current.session;
    this.state.bridges += 1;
    const began = performance.now();
    const told = { began: Math.round(began), quietMs: Math.round(began - this.heardAt), at: [this.state.lastGroup, this.state.lastIndex], fed: 0, firstMs: null, ended: '', steps: [] };
    this.state.bridgeLog.push(told);
    if (this.state.bridgeLog.length > MAX_RESUMES_TOLD) this.state.bridgeLog.shift();
    let fedAny = false;
    const run = async () => {
      let nextGroup = false; // the group played has no object after the last: the next's first
      while (!this.closed && !controller.signal.aborted) {
        const sequence = this.state.lastGroup + (nextGroup ? 1 : 0);
        const index = nextGroup ? 0 : this.state.lastIndex + 1;
        const got = await this.fetchPart(rendition, sequence, index, controller.signal);
        if (told.steps.length < 4) told.steps.push([`${sequence}.${index}`, Math.round(performance.now() - began), got === null || got === 'gone' ? String(got) : 'ok']);
        if (got === 'gone' && !nextGroup) {
          nextGroup = true;
          continue;
        }
        if (!got || got === 'gone') {
          told.ended = controller.signal.aborted ? controller.why || 'closed' : `${sequence}.${index}: ${got || 'failed'}`;
          return;
        }
        const facts = factsOf(got.sidecar);
        if (facts.session !== null && session !== null && facts.session !== session) {
          told.ended = `${sequence}.${index}: another session`;
          return;
        }
        const fed = await this.exclusive(async () => {
          if (this.closed || this.current.rendition.name !== rendition || this.current.session !== session) return false;
          const next = nextGroup
            ? sequence === this.state.lastGroup + 1 && index === 0
            : sequence === this.state.lastGroup && index === this.state.lastIndex + 1;
          if (!next) {
            told.ended = `${sequence}.${index}: played meanwhile`;
            return false;
          }
          const verdict = await this.check(rendition, sequence, index, got.bytes, got.sidecar, facts);
          if (told.steps.length < 6) told.steps.push(['checked', Math.round(performance.now() - began)]);
          if (!verdict.ok) {
            told.ended = `${sequence}.${index}: refused (${verdict.reason})`;
            return false;
          }
          if (sequence !== this.state.lastGroup) this.enter(sequence);
          this.state.bridged += 1;
          told.fed += 1;
          if (told.firstMs === null) told.firstMs = Math.round(performance.now() - began);
          await this.feed(rendition, got.bytes, index, { first: null }, { bridged: true });
          return true;
        });
        if (!fed) return;
        fedAny = true;
        nextGroup = false;
      }
    };
    const done = run()
      .catch((err) => console.warn('sealcast: MoQ bridge over HTTP', err))
      .finally(() => {
        if (!told.ended) told.ended = this.closed ? 'closed' : controller.why;
        // A bridge let go (the relay spoke, a rung switch) may begin again at once.
        if (!fedAny && !controller.signal.aborted) this.bridgeAgainAt = performance.now() + BRIDGE_AGAIN_MS;
        if (this.bridging && this.bridging.controller === controller) this.bridging = null;
      });
    this.bridging = { controller, done };
  }

  /**
   * The bridge over HTTP ends (`why`: the relay spoke, or a rung switch): its fetch in
   * flight let go, an object it checked fed.
   */
  async endBridge(why = 'the relay spoke') {
    const bridging = this.bridging;
    if (!bridging) return;
    bridging.controller.why = why;
    bridging.controller.abort();
    await bridging.done;
  }

  /**
   * Part `index` of segment `sequence` and its statement over HTTP, both at once (a node
   * holds both while the part may yet come): `{ bytes, sidecar }`, 'gone' when the part
   * never will be (404), null when a fetch failed or was let go.
   */
  async fetchPart(rendition, sequence, index, signal) {
    try {
      const [bytes, sidecar] = await Promise.all([
        fetchBounded(this.urlOf(rendition, `${sequence}.${index}.m4s`), MAX_PART, { signal, cache: 'no-store' }),
        fetchBounded(this.urlOf(rendition, `${sequence}.${index}.m4s.sig`), MAX_STATEMENT, { signal, cache: 'no-store' }),
      ]);
      if (!bytes || !sidecar) return bytes || sidecar ? null : 'gone';
      return { bytes, sidecar };
    } catch {
      return null;
    }
  }

  /**
   * No clean copy of an object of group `sequence`: the rest of the group decodes from it,
   * so playback waits for the next keyframe.
   */
  abandon(sequence) {
    this.abandoned = sequence;
    this.verifying.reposition();
  }

  /** The newest resume told, if any. */
  lastResume() {
    return this.state.resumeLog[this.state.resumeLog.length - 1];
  }

  /**
   * An object of publish session `session` came, and the buffer holds another session's
   * init segment: the catalog is read again (once playing, waiting up to CATALOG_WAIT_MS
   * for the version that describes it), and its init segment, checked like the first,
   * appended; the next object is placed right after what is buffered. False when no
   * catalog describes `session` for the rendition that plays (within the wait), or its
   * init segment is refused.
   */
  async follow(session) {
    const current = this.current;
    const name = current.rendition.name;
    const deadline = performance.now() + CATALOG_WAIT_MS;
    this.following = true;
    try {
      const described = await this.catalogNaming(name, session, deadline);
      if (!described || this.closed || this.current !== current) return false;
      const { init, verdict } = await this.checkInit(described);
      if (!verdict.ok) {
        console.warn(`sealcast: MoQ: the init segment of ${name} for session ${session} was refused: ${verdict.reason}`);
        return false;
      }
      await this.decodeAs(described.mime);
      await this.append(init);
      Object.assign(current, { init, session });
      this.restamp = this.buffer.buffered.length > 0;
      this.state.sessions += 1;
      return true;
    } finally {
      this.following = false;
    }
  }

  /**
   * Rendition `name` as a version of the catalog describes it for publish session
   * `session`, or null: the newest version only before anything played, else the versions
   * that come until `deadline`. Every version read is learnt.
   */
  async catalogNaming(name, session, deadline) {
    const track = await this.subscribe('catalog.json');
    try {
      for (;;) {
        let timer = 0;
        const renditions = await Promise.race([
          nextCatalog(track),
          new Promise((resolve) => {
            timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
          }),
        ]);
        clearTimeout(timer);
        if (!renditions) return null;
        this.learn(renditions);
        const described = renditions.find((r) => r.name === name && r.session === session);
        if (described) return described;
        // Before anything played, the newest catalog decides: a group of a session it
        // does not describe is one gone by (the next group is the new session's).
        if (this.state.objects === 0) return null;
      }
    } finally {
      this.release([track]);
    }
  }

  /**
   * What a newer catalog says of the renditions played and playable: their init segments,
   * statements and sessions, so a rung switched to later starts from the current ones.
   */
  learn(renditions) {
    for (const known of this.renditions) {
      const fresh = renditions.find((r) => r.name === known.name);
      if (fresh) Object.assign(known, fresh);
    }
  }

  /** Object `index` of the group that plays, checked, into the source buffer. */
  async feed(rendition, object, index, started, { bridged = false } = {}) {
    if (this.restamp) {
      this.restamp = false;
      await this.placeAfterBuffered(object);
    }
    await this.append(object);
    this.state.objects += 1;
    this.state.lastIndex = index;
    const now = performance.now();
    // The relay's silence (and the routes it lost) is counted on through what the bridge
    // feeds: the relay has not spoken.
    if (!bridged) {
      this.lastObjectAt = now;
      this.heardAt = now;
      this.routesLost = 0;
      this.quietResumes = 0;
    }
    const told = this.lastResume();
    if (told && told.objectMs === null) told.objectMs = Math.round(now - told.began);
    if (started.first) {
      started.first();
      started.first = null;
      this.onEvent('playing', { rendition });
    }
    this.keepUp();
  }

  /**
   * Part `index` of segment `sequence` checked against its statement (`facts`: what the
   * statement says, when the caller read it already).
   */
  check(rendition, sequence, index, bytes, sidecar, facts = factsOf(sidecar)) {
    return this.verifying.check({
      url: this.urlOf(rendition, `${sequence}.${index}.m4s`),
      bytes,
      sidecar,
      sequence,
      part: index,
      discontinuity: facts.discontinuity,
      load: (this.loads += 1),
    });
  }

  /**
   * A clean copy of a refused part over HTTP (past every HTTP cache, as the LL-HLS path
   * refetches a refused fragment), once it verifies; null otherwise.
   */
  async repair(rendition, sequence, index) {
    const got = await this.fetchPart(rendition, sequence, index);
    if (!got || got === 'gone' || this.closed) return null;
    const verdict = await this.check(rendition, sequence, index, got.bytes, got.sidecar);
    return verdict.ok ? got.bytes : null;
  }

  /** The statements group numbered `sequence`, or null when it never comes. */
  async statementsFor(track, sequence, pending) {
    if (pending.has(sequence)) {
      const group = pending.get(sequence);
      pending.delete(sequence);
      return group;
    }
    for (;;) {
      const group = await track.nextGroup();
      if (!group || group.sequence > sequence) {
        if (group) pending.set(group.sequence, group);
        return null;
      }
      if (group.sequence === sequence) return group;
    }
  }

  /**
   * The first object of a new publish session, whose clock started over: the source
   * buffer's timestamp offset is set so that its earliest decode time lands where the
   * buffered media ends, and stays so for the objects after it. (MSE's `sequence` mode
   * would do the same, but Chromium's renderer crashed on it with muxed audio and video.)
   * Left as it is when the object's start cannot be read.
   */
  async placeAfterBuffered(object) {
    const buffer = this.buffer;
    if (buffer.updating) await once(buffer, 'updateend');
    const ranges = buffer.buffered;
    const start = earliestDecodeTime(this.current.init, object);
    if (!ranges.length || start === null) return;
    buffer.timestampOffset = ranges.end(ranges.length - 1) - start;
  }

  /** The source buffer made to decode `mime` (`changeType`) when it decodes another. */
  async decodeAs(mime) {
    if (mime === this.bufferMime || typeof this.buffer.changeType !== 'function') return;
    if (this.buffer.updating) await once(this.buffer, 'updateend');
    this.buffer.changeType(mime);
    this.bufferMime = mime;
  }

  /** Appends `bytes` to the source buffer once it is idle, and drops the back buffer. */
  async append(bytes) {
    const buffer = this.buffer;
    if (buffer.updating) await once(buffer, 'updateend');
    const before = buffer.buffered.length ? buffer.buffered.end(buffer.buffered.length - 1) : null;
    buffer.appendBuffer(bytes);
    await once(buffer, 'updateend');
    if (before !== null && buffer.buffered.length) {
      const added = buffer.buffered.end(buffer.buffered.length - 1) - before;
      if (added > 0 && added < 2) this.objectSeconds = 0.8 * this.objectSeconds + 0.2 * added;
    }
    const now = this.video.currentTime;
    if (buffer.buffered.length && now - buffer.buffered.start(0) > BACK_BUFFER_S * 1.5) {
      buffer.remove(0, now - BACK_BUFFER_S);
      await once(buffer, 'updateend');
    }
  }

  /**
   * Keeps the playhead near the newest media: starts it there, jumps when far behind, and
   * plays a little faster when somewhat behind (after a stall) until it is back.
   */
  keepUp() {
    const ranges = this.buffer.buffered;
    if (!ranges.length) return;
    const end = ranges.end(ranges.length - 1);
    const at = this.video.currentTime;
    const land = Math.min(LAND_BEHIND_MAX_S, Math.max(LAND_BEHIND_MIN_S, 1.5 * this.objectSeconds + 0.05));
    if (at < ranges.start(ranges.length - 1) || end - at > MAX_BEHIND_S) {
      this.video.currentTime = Math.max(ranges.start(ranges.length - 1), end - land);
    } else {
      const rate = end - at > land + CATCH_UP_SLACK_S ? CATCH_UP_RATE : 1;
      if (this.video.playbackRate !== rate) this.video.playbackRate = rate;
    }
    if (this.video.paused) this.video.play().catch(() => {});
  }

  finish(why, error = null) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.bridging) this.bridging.controller.abort();
    if (this.video.playbackRate !== 1) this.video.playbackRate = 1;
    this.video.removeEventListener('waiting', this.onWaiting);
    this.video.removeEventListener('playing', this.onPlaying);
    for (const track of this.tracks) track.close();
    if (this.session) this.session.close();
    this.onEvent(why, error ? { error: String(error.message || error) } : {});
  }

  /** Stops playback and lets go of the session and the media source. */
  close() {
    this.finish('closed');
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }
}

/**
 * What a part statement says of where its part belongs, unchecked: the publish session
 * (16 hex digits) and the discontinuity sequence. MoQ addresses a part by group and index
 * only, so the statement is the only place they are said; the verifier still checks the
 * signature, pins the session and checks the order. `{ session: null, discontinuity: -1 }`
 * when it does not decode (then it is refused for what it is).
 */
function factsOf(sidecar) {
  try {
    const { statement } = decodeEnvelope(sidecar, MAX_EVENT_STATEMENT_LEN);
    const m = decodeStatement(statement);
    return { session: m.session.toString(16).padStart(16, '0'), discontinuity: Number(m.discontinuity) };
  } catch {
    return { session: null, discontinuity: -1 };
  }
}

// -- ISO BMFF, just enough to place a new session's media: bounded, never throws --------

/** Boxes read in one box at most (a moov's traks, a moof's trafs). */
const MAX_CHILD_BOXES = 64;

/** The boxes in `data` (a box's payload): `{ kind, body }`, up to the first that does not fit. */
function childBoxes(data) {
  const boxes = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at + 8 <= data.length && boxes.length < MAX_CHILD_BOXES; ) {
    const size = view.getUint32(at);
    if (size < 8 || at + size > data.length) break; // 64-bit and to-the-end sizes too
    const kind = String.fromCharCode(data[at + 4], data[at + 5], data[at + 6], data[at + 7]);
    boxes.push({ kind, body: data.subarray(at + 8, at + size) });
    at += size;
  }
  return boxes;
}

const child = (box, kind) => (box ? childBoxes(box.body).find((b) => b.kind === kind) : undefined);

/** The u32 `at` bytes into `body`, or null past its end. */
function u32At(body, at) {
  return body.length >= at + 4 ? new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(at) : null;
}

/**
 * A `tkhd`'s track ID or an `mdhd`'s timescale: the u32 after the creation and
 * modification times, 32-bit in a version 0 box, 64-bit in a version 1.
 */
const afterTimes = (body) => u32At(body, body[0] === 1 ? 20 : 12);

/** A `tfdt`'s base media decode time: a u32, or in a version 1 box a u64 (as a Number). */
function decodeTime(body) {
  if (body[0] !== 1) return u32At(body, 4);
  const high = u32At(body, 4);
  const low = u32At(body, 8);
  return high === null || low === null ? null : high * 2 ** 32 + low;
}

/**
 * The earliest decode time, in seconds, of the fragments in `object` (its `moof`s' `tfdt`
 * over the timescale `init` gives each track), or null when it cannot be read.
 */
function earliestDecodeTime(init, object) {
  const timescales = new Map(); // track ID -> timescale
  for (const trak of childBoxes(child({ body: init }, 'moov')?.body || new Uint8Array()).filter((b) => b.kind === 'trak')) {
    const tkhd = child(trak, 'tkhd');
    const mdhd = child(child(trak, 'mdia'), 'mdhd');
    if (!tkhd || !mdhd) continue;
    const id = afterTimes(tkhd.body);
    const scale = afterTimes(mdhd.body);
    if (id !== null && scale) timescales.set(id, scale);
  }
  let earliest = null;
  for (const moof of childBoxes(object).filter((b) => b.kind === 'moof')) {
    for (const traf of childBoxes(moof.body).filter((b) => b.kind === 'traf')) {
      const tfhd = child(traf, 'tfhd');
      const tfdt = child(traf, 'tfdt');
      const scale = tfhd ? timescales.get(u32At(tfhd.body, 4)) : undefined;
      const time = tfdt ? decodeTime(tfdt.body) : null;
      if (!scale || time === null) continue;
      const seconds = time / scale;
      if (earliest === null || seconds < earliest) earliest = seconds;
    }
  }
  return earliest;
}

/**
 * The playable renditions of the next version of the catalog on `track`, or null when the
 * track ends first or the version is over MAX_CATALOG or not JSON.
 */
async function nextCatalog(track) {
  const group = await track.nextGroup();
  const bytes = group && (await group.nextObject());
  if (!bytes || bytes.length > MAX_CATALOG) return null;
  try {
    return playableRenditions(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return null;
  }
}
