// A small moq-lite subscriber for the browser: it dials a moq-relay over WebTransport and
// reads tracks (groups of objects) from it. No dependencies, no publishing, no announces.
//
// Wire version: moq-lite-06 (draft-lcurley-moq-lite, as moq-net 0.3 and moq-relay 0.17
// speak it). From moq-lite-03 on the version is chosen by name, not in SETUP: over
// WebTransport the name is offered as a sub-protocol (`protocols`, sent as the
// `WT-Available-Protocols` header), and the relay's pick comes back in
// `WebTransport.protocol`. A relay that picks anything else is refused.
//
// On the wire, every integer a QUIC varint: each side opens a unidirectional Setup Stream
// (type 1, a size-prefixed SETUP of parameters, FIN; ours declares the Subscriber role, so
// the relay neither asks us for announcements nor lets us publish). A subscription is a
// bidirectional stream: type 2, a size-prefixed SUBSCRIBE (id, broadcast path, track name,
// priority byte, max age in ms, start group, end group + 1 or 0, start frame, end frame + 1
// or 0); the relay answers on it with typed, size-prefixed SUBSCRIBE_START (0), _END (1: the
// group the track ends before) and _DROP (2), FINs when the track is over, and resets it
// with a stream error code when it refuses. Each group comes on its own unidirectional
// stream: type 0, a size-prefixed GROUP header (subscription id, group sequence, index of
// the stream's first frame), then frames until FIN, each a zigzag timestamp delta, a size
// and the payload. Every length read off the network is bounded before anything is
// allocated for it: 64 KiB for a control message or header, 4 MiB for an object.

const VERSION = 'moq-lite-06';
const MAX_CONTROL = 64 * 1024;
const MAX_OBJECT = 4 * 1024 * 1024;
const MAX_NAME = 1024;
/** Groups that arrived and wait for nextGroup(); past this the oldest is dropped. */
const MAX_PENDING_GROUPS = 16;
/** How long an ended subscription waits for group streams that QUIC delivered late. */
const END_GRACE_MS = 1000;

// Stream types (unidirectional: group, setup; bidirectional: subscribe, goaway).
const [STREAM_GROUP, STREAM_SETUP, CONTROL_SUBSCRIBE, CONTROL_GOAWAY] = [0, 1, 2, 5];
// SETUP's Role parameter (3) with the value for a subscriber (2).
const [SETUP_ROLE, ROLE_SUBSCRIBER] = [3, 2];

// The names moq-net gives the codes a relay resets a stream or closes a session with.
const STREAM_ERRORS = {
  0x0: 'internal error', 0x1: 'cancelled', 0x2: 'delivery timeout', 0x3: 'session closed', 0x4: 'going away',
  0x5: 'too far behind', 0x12: 'malformed track', 0x31: 'control timeout', 0x32: 'group too large',
  0x33: 'not found', 0x34: 'old', 0x35: 'evicted', 0x36: 'unroutable', 0x37: 'wrong frame size',
  0x38: 'frame too large', 0x39: 'timestamp mismatch',
};
const SESSION_ERRORS = {
  0x0: 'cancelled', 0x1: 'internal error', 0x2: 'unauthorized', 0x3: 'protocol violation',
  0x10: 'goaway timeout', 0x11: 'timeout', 0x15: 'unsupported version',
};

const named = (table, code) => `${table[code] ?? 'error'} (0x${code.toString(16)})`;
const text = (e) => (e && e.message) || String(e);
const ignore = () => {};

/** Malformed or oversized data from the relay. */
class ProtocolError extends Error {}

/** An Error for a failed read of `what`: with the code, when the relay reset the stream. */
function streamError(what, e) {
  if (e && typeof e.streamErrorCode === 'number') {
    return new Error(`${what}: the relay reset the stream: ${named(STREAM_ERRORS, e.streamErrorCode)}`);
  }
  return e instanceof ProtocolError ? e : new Error(`${what}: ${text(e)}`);
}

function pushVarint(out, v) {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a varint: ${v}`);
  const length = v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
  const bytes = [];
  for (let i = 0, rest = v; i < length; i += 1, rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  bytes[0] |= [0, 0x40, 0x80, 0, 0xc0][length >> 1];
  out.push(...bytes);
}

function pushString(out, s, what) {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length > MAX_NAME) throw new RangeError(`${what} is longer than ${MAX_NAME} bytes`);
  pushVarint(out, bytes.length);
  out.push(...bytes);
}

/**
 * Reads a WebTransport receive stream on demand (or, with `bytes`, a message's body): bytes
 * are pulled only as far as asked, so what sits here is one request plus at most one
 * chunk, and QUIC flow control holds back the rest.
 */
class StreamReader {
  constructor(readable, bytes = null) {
    this.reader = readable && readable.getReader();
    this.chunks = bytes ? [bytes] : [];
    this.buffered = bytes ? bytes.length : 0;
    this.ended = Boolean(bytes);
  }

  /** Whether `n` bytes are buffered, reading until they are or the stream ends. */
  async fill(n) {
    while (this.buffered < n && !this.ended) {
      const { value, done } = await this.reader.read();
      if (done) this.ended = true;
      else if (value.byteLength > 0) {
        this.chunks.push(value);
        this.buffered += value.byteLength;
      }
    }
    return this.buffered >= n;
  }

  take(n) {
    const out = new Uint8Array(n);
    this.takeInto(out, 0, n);
    return out;
  }

  /** Moves `n` buffered bytes into `out` at `at`. */
  takeInto(out, at, n) {
    for (let filled = 0; filled < n;) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.byteLength, n - filled);
      out.set(chunk.subarray(0, used), at + filled);
      filled += used;
      if (used === chunk.byteLength) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    this.buffered -= n;
  }

  /** The next varint; null if the stream ended cleanly before it and `endOk`. */
  async varint(what, endOk = false) {
    if (!(await this.fill(1))) {
      if (endOk) return null;
      throw new ProtocolError(`${what}: the stream ended early`);
    }
    const length = 1 << (this.chunks[0][0] >> 6);
    if (!(await this.fill(length))) throw new ProtocolError(`${what}: the stream ended inside a varint`);
    const bytes = this.take(length);
    let value = bytes[0] & 0x3f;
    for (let i = 1; i < length; i += 1) value = value * 256 + bytes[i];
    // Above 2^53 a number would be rounded; no sequence or size a player needs gets there.
    if (!Number.isSafeInteger(value)) throw new ProtocolError(`${what}: a varint of ${value} is too large`);
    return value;
  }

  /**
   * Exactly `n` bytes, `n` bounded by the caller. Copied into place chunk by chunk as they
   * come: however finely the relay slices them (a byte per read), they cost `n` bytes and
   * time linear in the chunks, not a list of chunks nor a quadratic walk of one.
   */
  async exact(n, what) {
    const out = new Uint8Array(n);
    let filled = 0;
    for (;;) {
      const used = Math.min(this.buffered, n - filled);
      this.takeInto(out, filled, used);
      filled += used;
      if (filled === n) return out;
      if (!(await this.fill(1))) throw new ProtocolError(`${what}: the stream ended ${n - filled} bytes early`);
    }
  }

  /** A size-prefixed message of at most `max` bytes, as a reader of its body. */
  async message(what, max = MAX_CONTROL) {
    const size = await this.varint(what);
    if (size > max) throw new ProtocolError(`${what} of ${size} bytes is over the ${max}-byte limit`);
    return new StreamReader(null, await this.exact(size, what));
  }

  cancel() {
    this.chunks = [];
    this.buffered = 0;
    if (this.reader) this.reader.cancel().catch(ignore);
  }
}

/** One group of a track: its objects in order, read from the group's own stream. */
class MoqGroup {
  constructor(track, sequence, frameStart, reader) {
    /** The group's sequence number (for sealcast, the segment's media sequence). */
    this.sequence = sequence;
    /** The index of the first object on this stream: 0 unless the relay lacked the head. */
    this.frameStart = frameStart;
    this.track = track;
    this.reader = reader;
    /** The index of the next object read. */
    this.index = frameStart;
    this.done = false;
    this.error = null;
    this.chain = Promise.resolve(null);
  }

  /**
   * The next object's payload, or null once the group is complete. Calls are served in
   * order. Rejects if the relay reset the group (`old`, when the reader fell behind the
   * subscription's max age) or if an object is over 4 MiB, which fails the track too.
   * @returns {Promise<Uint8Array|null>}
   */
  nextObject() {
    const next = this.chain.then(() => this.read());
    this.chain = next.catch(ignore);
    return next;
  }

  /** Stops reading this group: its stream is cancelled. */
  close() {
    this.done = true;
    this.reader.cancel();
  }

  async read() {
    if (this.error) throw this.error;
    if (this.done) return null;
    const what = `group ${this.sequence} of ${this.track.label}`;
    try {
      // Each frame opens with its timestamp delta, so a stream ending there ends the group.
      if ((await this.reader.varint(what, true)) === null) {
        this.done = true;
        return null;
      }
      const size = await this.reader.varint(what);
      if (size > MAX_OBJECT) {
        const e = new ProtocolError(`${what}: object ${this.index} of ${size} bytes is over the ${MAX_OBJECT}-byte limit`);
        this.track.fail(e);
        throw e;
      }
      const payload = await this.reader.exact(size, what);
      this.index += 1;
      return payload;
    } catch (e) {
      this.close();
      this.error = streamError(what, e);
      throw this.error;
    }
  }
}

/** A subscription to one track: its groups as they arrive. */
class MoqTrack {
  constructor(session, id, label, writer) {
    /** The broadcast path and track name. */
    this.label = label;
    /** The first group the relay serves, once it said (SUBSCRIBE_START). */
    this.startGroup = null;
    /** The group the track ends before, once the relay said (SUBSCRIBE_END). */
    this.endGroup = null;
    this.session = session;
    this.id = id;
    this.writer = writer;
    this.reader = null;
    this.pending = [];
    this.waiters = [];
    this.last = -1;
    this.finished = false;
    this.closed = false;
    this.error = null;
  }

  /**
   * The next group: in the order groups arrive, but never one numbered at or below a
   * group already returned (such late ones are dropped); null once the track has ended.
   * Rejects if the relay refused the subscription or the session ended.
   * @returns {Promise<MoqGroup|null>}
   */
  nextGroup() {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pump();
    });
  }

  /** Unsubscribes: our side of the request ends, queued groups go, nextGroup() says null. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.writer.close().catch(ignore);
    this.end();
  }

  pump() {
    while (this.waiters.length > 0 && this.pending.length > 0) {
      const group = this.pending.shift();
      if (group.sequence <= this.last) {
        group.close();
        continue;
      }
      this.last = group.sequence;
      this.waiters.shift().resolve(group);
    }
    if (this.pending.length === 0 && (this.finished || this.closed)) {
      for (const w of this.waiters.splice(0)) w.resolve(null);
    }
  }

  /** A group stream of this subscription arrived. */
  arrive(group) {
    if (this.closed || this.error || group.sequence <= this.last) {
      group.close();
      return;
    }
    this.pending.push(group);
    if (this.pending.length > MAX_PENDING_GROUPS) {
      // The reader is not keeping up: drop the oldest group rather than hold streams open.
      const oldest = this.pending.reduce((o, g, i) => (g.sequence < this.pending[o].sequence ? i : o), 0);
      this.pending.splice(oldest, 1)[0].close();
    }
    this.pump();
  }

  /** Fails the track: waiting and later nextGroup() calls reject with `error`. */
  fail(error) {
    if (this.error || this.closed) return;
    this.error = error;
    this.writer.abort().catch(ignore);
    if (this.reader) this.reader.cancel();
    this.end();
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  end() {
    this.session.tracks.delete(this.id);
    for (const g of this.pending.splice(0)) g.close();
    this.pump();
  }

  /** Reads the relay's answers on the subscription's stream until it ends. */
  async run(reader) {
    this.reader = reader;
    const what = `subscription to ${this.label}`;
    try {
      for (;;) {
        const type = await reader.varint(what, true);
        if (type === null) break;
        const m = await reader.message(`${what}: a response`);
        if (type === 0) this.startGroup = await m.varint(what);
        else if (type === 1) this.endGroup = await m.varint(what);
        else if (type !== 2) throw new ProtocolError(`${what}: unknown response type ${type}`);
      }
    } catch (e) {
      if (!this.closed) this.fail(streamError(what, e));
      return;
    }
    if (this.closed || this.error) return;
    // The track is over. Group streams race the FIN, so unless the last group is in, late
    // ones get a moment before nextGroup() says the track has ended.
    const finish = () => {
      this.finished = true;
      this.pump();
    };
    if (this.endGroup !== null && this.last + 1 >= this.endGroup) finish();
    else setTimeout(finish, END_GRACE_MS);
  }
}

/** `url` without its query and fragment (a playback token rides in the query). */
function withoutQuery(url) {
  const cut = String(url).search(/[?#]/);
  return cut < 0 ? String(url) : String(url).slice(0, cut);
}

/**
 * A moq-lite session with a moq-relay over WebTransport, to subscribe to tracks.
 *
 * `closed` settles when the session ends: it resolves when the session was closed cleanly
 * and rejects with an Error saying why otherwise.
 */
export class MoqSession {
  /**
   * Dials `url` (the relay's URL, whose path is the relay's root for broadcast paths) and
   * completes the moq-lite-06 handshake.
   * @param {string} url e.g. `https://relay.example:4443/`, with `?token=…` for a private
   *   stream (the query is dialed, never written into an error message)
   * @param {{certificateHashes?: string[], timeoutMs?: number}} [options] hex SHA-256
   *   hashes of the relay's certificate when it is self-signed (ECDSA, valid at most 14
   *   days), and how long the handshake may take (10 s)
   * @returns {Promise<MoqSession>}
   */
  static async connect(url, options = {}) {
    const shown = withoutQuery(url);
    const init = { protocols: [VERSION] };
    const hashes = (options.certificateHashes ?? []).map(hexBytes);
    if (hashes.length > 0) {
      init.serverCertificateHashes = hashes.map((value) => ({ algorithm: 'sha-256', value }));
    }
    let transport;
    try {
      transport = new WebTransport(url, init);
    } catch (e) {
      throw new Error(`cannot open WebTransport to ${shown}: ${text(e)}`);
    }
    const session = new MoqSession(transport, shown);
    const limit = options.timeoutMs ?? 10000;
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no moq-lite session with ${shown} within ${limit} ms`)), limit);
    });
    try {
      await Promise.race([session.handshake(), late]);
    } catch (e) {
      session.close();
      throw e.name === 'Error' ? e : new Error(`the moq-lite handshake with ${shown} failed: ${text(e)}`);
    } finally {
      clearTimeout(timer);
    }
    return session;
  }

  /** @private Use MoqSession.connect(); `url` is the relay's URL without its query. */
  constructor(transport, url) {
    /** The moq-lite version spoken. */
    this.version = VERSION;
    /** Set once the relay sent GOAWAY: it is shutting down, so reconnect soon. */
    this.goingAway = false;
    this.transport = transport;
    this.url = url;
    this.tracks = new Map();
    this.nextId = 0;
    this.error = null;
    this.violation = null;
    this.peerSetup = false;
    this.setup = new Promise((resolve) => {
      this.setupSeen = resolve;
    });
    /** @type {Promise<void>} */
    this.closed = transport.closed.then(
      (info) => {
        if (info && info.closeCode) {
          // Closed here, for a protocol violation: say that, not that the relay closed it.
          if (this.violation) throw this.violation;
          const reason = info.reason ? `: ${info.reason}` : '';
          throw new Error(`the relay closed the session: ${named(SESSION_ERRORS, info.closeCode)}${reason}`);
        }
      },
      (e) => {
        throw new Error(`the session with ${url} failed: ${text(e)}`);
      },
    );
    // Handled here, so that a session nobody watches never reports an unhandled rejection.
    this.closed.then(() => this.close(), (e) => this.close(0, '', e));
  }

  async handshake() {
    try {
      await this.transport.ready;
    } catch (e) {
      throw new Error(`WebTransport to ${this.url} failed: ${text(e)}`);
    }
    const chosen = this.transport.protocol;
    if (chosen !== VERSION) throw new Error(`the relay at ${this.url} chose "${chosen ?? ''}", not ${VERSION}`);
    const body = [];
    [1, SETUP_ROLE, 1, ROLE_SUBSCRIBER].forEach((v) => pushVarint(body, v));
    const writer = (await this.transport.createUnidirectionalStream()).getWriter();
    // Not awaited: the relay stops reading once it has the SETUP, which may fail the FIN
    // here with STOP_SENDING; a session that really failed shows in `closed`.
    writer.write(new Uint8Array([STREAM_SETUP, body.length, ...body])).catch(ignore);
    writer.close().catch(ignore);
    this.accept(this.transport.incomingUnidirectionalStreams, (s) => this.serveUni(new StreamReader(s)));
    this.accept(this.transport.incomingBidirectionalStreams, (s) => this.serveBidi(s));
    // The relay's own SETUP says the session is up; a refusal closes the session instead.
    const ended = this.closed.then(() => {
      throw new Error('the session closed during setup');
    });
    ended.catch(ignore);
    await Promise.race([this.setup, ended]);
  }

  /**
   * Subscribes to `track` of the broadcast at `broadcast` (relative to the URL's path),
   * from its newest group. A broadcast or track the relay lacks rejects the track's first
   * nextGroup(): `unroutable` for an unknown broadcast, `not found` for an unknown track.
   * @param {string} broadcast
   * @param {string} track
   * @param {{priority?: number, maxAgeMs?: number}} [options] priority 0-255; how far a
   *   group may fall behind the newest before the relay gives up on it (0: at once)
   * @returns {Promise<MoqTrack>}
   */
  async subscribe(broadcast, track, options = {}) {
    if (this.error) throw this.error;
    const id = this.nextId;
    this.nextId += 1;
    const body = [];
    pushVarint(body, id);
    pushString(body, broadcast, 'the broadcast path');
    pushString(body, track, 'the track name');
    body.push((options.priority ?? 0) & 0xff);
    pushVarint(body, options.maxAgeMs ?? 0);
    // Group 0 as the floor (the max age picks the first group), no end group, whole groups.
    body.push(0, 0, 0, 0);
    const head = [];
    pushVarint(head, CONTROL_SUBSCRIBE);
    pushVarint(head, body.length);
    try {
      const stream = await this.transport.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      const subscription = new MoqTrack(this, id, `${broadcast}/${track}`, writer);
      this.tracks.set(id, subscription);
      subscription.run(new StreamReader(stream.readable));
      // A failed write shows as the subscription's stream failing, with the relay's reason.
      writer.write(new Uint8Array([...head, ...body])).catch(ignore);
      return subscription;
    } catch (e) {
      this.tracks.delete(id);
      throw new Error(`cannot subscribe to ${broadcast}/${track}: ${text(e)}`);
    }
  }

  /** Closes the session and with it every subscription (whose reads reject). */
  close(code = 0, reason = '', error = new Error('the session is closed')) {
    if (!this.error) {
      this.error = error;
      for (const t of [...this.tracks.values()]) t.fail(error);
    }
    try {
      this.transport.close({ closeCode: code, reason });
    } catch {
      // Already closed.
    }
  }

  /** Hands every stream the relay opens to `serve`, until the session ends. */
  async accept(streams, serve) {
    const reader = streams.getReader();
    for (;;) {
      const next = await reader.read().catch(() => ({ done: true }));
      if (next.done) return;
      serve(next.value);
    }
  }

  async serveUni(reader) {
    try {
      const type = await reader.varint('a stream', true);
      if (type === STREAM_SETUP) {
        if (this.peerSetup) throw new ProtocolError('a second SETUP');
        this.peerSetup = true;
        // Its parameters (probing, cost, hop) mean nothing to a subscriber: bounded, skipped.
        await reader.message('SETUP');
        reader.cancel();
        this.setupSeen();
      } else if (type === STREAM_GROUP) {
        const what = 'a GROUP header';
        const m = await reader.message(what);
        const [id, sequence, frameStart] = [await m.varint(what), await m.varint(what), await m.varint(what)];
        const track = this.tracks.get(id);
        if (track) track.arrive(new MoqGroup(track, sequence, frameStart, reader));
        else reader.cancel();
      } else {
        reader.cancel();
      }
    } catch (e) {
      reader.cancel();
      // A reset stream is the relay's business; a malformed one means a broken peer.
      if (e instanceof ProtocolError && !this.error) {
        const message = `protocol violation by the relay: ${e.message}`;
        this.violation = new Error(message);
        this.close(0x3, message.slice(0, 1000), this.violation);
      }
    }
  }

  /** Only GOAWAY is expected from a relay serving a subscriber; anything else is declined. */
  async serveBidi(stream) {
    const reader = new StreamReader(stream.readable);
    const type = await reader.varint('a request', true).catch(() => null);
    if (type === CONTROL_GOAWAY) {
      // Noted; the stream stays open until the relay ends the session.
      this.goingAway = true;
      return;
    }
    reader.cancel();
    stream.writable.abort().catch(ignore);
  }
}

/** The bytes of a hex SHA-256 hash (colons and spaces allowed). */
function hexBytes(hex) {
  const clean = String(hex).replace(/[:\s]/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(clean)) throw new Error(`not a hex SHA-256 certificate hash: ${hex}`);
  return Uint8Array.from(clean.match(/../g), (h) => parseInt(h, 16));
}
