// sealcast viewer-side verification: the player checks every segment, part and init segment
// it plays against the cluster's root key, itself, before hls.js sees a byte of it.
//
// Layout of this module (an ES module; no build step, no import map):
// - wire: strict, bounded decoders of what the cluster signs and serves (root key file,
//   trust bundle, ingest certificates, revocations, the envelopes of segment, part and event
//   statements). They mirror the Rust layouts byte for byte (docs/wire.md; domain/src/wire/,
//   certs/src/signing/):
//   anything but exactly the layout (trailing bytes, unknown tags or algorithms, lengths
//   over the caps) is refused, never guessed at.
// - crypto backends: WebCrypto where the browser verifies ML-DSA-65 (or Ed25519) natively;
//   otherwise the vendored @noble libraries in a module Web Worker (verify-worker.js), so
//   the main thread never waits for a library verification.
// - Trust: the pinned root, the ingest keys it certified and the keys it revoked, rebuilt
//   from /trust/v1/bundle, and the part keys ingests delegated (`{seq}.partkey`, fetched
//   once per run of segments); `resolveKey` is the one place that says which public key
//   verifies a statement.
// - PlaybackVerifier: the checks one playback makes on each fragment (signature, domain
//   tag, stream, rendition, sequence, part, discontinuity, duration, length, digest,
//   session, continuity), with a stable reason string for every refusal.
// - openVerification / verifyingLoader: what the player wires in: the trust material
//   fetched from the page's origin and an hls.js fragment loader (`fLoader`) that hands
//   hls.js the bytes only once they verified.
//
// Refusal reasons (stable strings, also the names scripts and tests see):
//   missing_signature   no sidecar (`{media URL}.sig`), or an empty one
//   malformed_signature the sidecar, or the statement in it, is not exactly the layout
//   wrong_kind          a genuine statement of another kind (a part's for a segment, ...)
//   unknown_key         no certificate from the root for the signing key
//   revoked_key         the root revoked the key before the statement was signed
//   expired_key         the statement was signed outside the key's validity
//   wrong_algorithm     the statement names another algorithm than its key's
//   bad_signature       the signature does not verify
//   wrong_stream, wrong_rendition, wrong_sequence, wrong_part, wrong_discontinuity,
//   wrong_duration      the statement is about another fragment than the one asked for
//   wrong_session       a publish session other than the pinned one, without a discontinuity
//   wrong_length, digest_mismatch   the bytes are not the ones signed
//   skipped_sequence, repeated_sequence, reordered_sequence   continuity broken
//   expired_delegation  a part signed by a delegated key outside the run it was delegated for
//   unexpected_url      the fragment's URL is not in the cluster's URL layout
//   no_root_key, bad_root_key, root_mismatch   no usable root key (every fragment refused)
//   verifier_unavailable  the verification library could not run
//
// What it protects against: a node, cache, CDN or proxy between the cluster and the viewer
// that changes, swaps, replays, reorders or silently drops fragments (any of it is refused,
// or, for a drop, caught as a skipped number), serves another stream's genuine media, or
// a key the root revoked (as far as the bundle carries the revocation). What it does not:
// an origin that serves both this page and the root key can serve a page that checks
// nothing (a pinned fingerprint, or a viewer comparing the one shown with the publisher's,
// guards the key, never the page's code); a node can withhold a revocation from the bundle
// (never forge one) and can mark segments as gaps (skipped openly, not silently); a thief
// of a key can backdate what it signs for a recording (live playback is judged by the
// viewer's clock); native HLS (no MSE) and pages outside a secure context verify nothing,
// and say so.
//
// The contract, written down: docs/wire.md has every layout decoded here byte by byte (key
// file, trust bundle, certificates, revocations, the envelope, segment, part and event
// statements, part-key delegations), the caps, the algorithm codes, the fingerprint rule
// (SHA-256(algorithm code || root public key); the root key id is its first 16 bytes) and
// when a statement counts as signed (see `signedAt`). certs/src/signing/playback/wire_doc.rs
// checks that page's tables, and this file's TAG, ALGORITHMS and MAX_* constants, against
// the Rust code. The reasons above are the Rust twin's too (certs::signing::playback,
// `Reason`), and both verifiers run the same vectors (certs/src/signing/playback/vectors.rs;
// here through broadcast/tests/broadcast/player_verify.rs).

// ---- constants ------------------------------------------------------------------------------

const ascii = (s) => new TextEncoder().encode(s);

const TAG = {
  segment: ascii('sealcast/v1/segment-manifest\0'),
  part: ascii('sealcast/v1/part-manifest\0'),
  event: ascii('sealcast/v1/control-event\0'),
  certificate: ascii('sealcast/v1/ingest-certificate\0'),
  revocation: ascii('sealcast/v1/key-revocation\0'),
  bundle: ascii('sealcast/v1/trust-bundle\0'),
  partKey: ascii('sealcast/v1/part-key\0'),
  keyFile: ascii('sealcast-key\0'),
};

/** Signature algorithms by their one-byte code (`SignatureAlgorithm::code`). */
export const ALGORITHMS = Object.freeze({
  1: Object.freeze({ name: 'ML-DSA-65', publicKeyLength: 1952, signatureLength: 3309 }),
  2: Object.freeze({ name: 'Ed25519', publicKeyLength: 32, signatureLength: 64 }),
});
export const ML_DSA_65 = 1;
export const ED25519 = 2;

/** FIPS 204 context string of every ML-DSA signature in sealcast (keys.rs MLDSA_CONTEXT). */
export const MLDSA_CONTEXT = ascii('sealcast/v1');

const VERSION = 1;
const ROOT_PUBLIC_KIND = 3;
const MAX_MEDIA_STATEMENT_LEN = 1024;
const MAX_SIGNATURE_LEN = 8192;
const MAX_EVENT_LEN = 48 * 1024;
// SignedEvent's statement cap: MAX_SIGNED_EVENT_LEN - MAX_SIGNATURE_LEN.
const MAX_EVENT_STATEMENT_LEN = 8 + TAG.event.length + 1 + 16 + 8 + 4 + MAX_EVENT_LEN;
const MAX_BUNDLE_ITEMS = 1024;
const MAX_BUNDLE_ITEM_LEN = 8 * 1024;
const MAX_INIT_LEN = 16 * 1024;
const MAX_NAME_LEN = 64;

const MAX_DELEGATED_KEY_LEN = 1952;
const MAX_PART_KEY_RUN = 1024n;
// domain/src/wire/part_key.rs: every field at its cap.
const MAX_PART_KEY_LEN = TAG.partKey.length + 1 + 16 + 65 + 8 + 65 + 8 + 8 + 1 + 4 + MAX_DELEGATED_KEY_LEN;

/** Largest sidecar of a segment or part, and of an init segment. */
export const MAX_MEDIA_SIDECAR = 8 + MAX_MEDIA_STATEMENT_LEN + MAX_SIGNATURE_LEN;
export const MAX_INIT_SIDECAR = 8 + MAX_EVENT_STATEMENT_LEN + MAX_SIGNATURE_LEN;
/** Largest part-key delegation (`{seq}.partkey`). */
export const MAX_PART_KEY_SIDECAR = 8 + MAX_PART_KEY_LEN + MAX_SIGNATURE_LEN;
/** Largest trust bundle and root key file fetched. */
export const MAX_BUNDLE = TAG.bundle.length + 1 + 8 + 2 * MAX_BUNDLE_ITEMS * (4 + MAX_BUNDLE_ITEM_LEN);
export const MAX_ROOT_FILE = TAG.keyFile.length + 3 + 1952;

/** Tolerance between a signed duration and the playlist's (printed with 5 decimals). */
const DURATION_TOLERANCE_S = 0.001;

export const MODE_WEBCRYPTO = 'in this browser (WebCrypto)';
export const MODE_LIBRARY = 'in this browser (library)';
export const MODE_NATIVE_HLS =
  'not verified: this browser plays HLS itself (no Media Source Extensions), so the page cannot check what it plays';
export const MODE_INSECURE = 'not verified: the page was not loaded over HTTPS, and browsers verify only there';

// ---- errors ---------------------------------------------------------------------------------

/** A refusal: `reason` is one of the stable strings above, `detail` is for people. */
export class Refusal extends Error {
  constructor(reason, detail) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.reason = reason;
    this.detail = detail || '';
  }
}

function refuse(reason, detail) {
  throw new Refusal(reason, detail);
}

// ---- bytes ----------------------------------------------------------------------------------

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += HEX[b];
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function startsWith(bytes, prefix) {
  return bytes.length >= prefix.length && equalBytes(bytes.subarray(0, prefix.length), prefix);
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected bytes');
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/** SHA-256(algorithm code || public key): a key's fingerprint; its first 16 bytes, the id. */
async function keyDigest(algorithm, publicKey) {
  const input = new Uint8Array(1 + publicKey.length);
  input[0] = algorithm;
  input.set(publicKey, 1);
  return sha256(input);
}

/** Hex in groups of four, as the overlay shows a fingerprint. */
export function groupHex(hex) {
  return hex.replace(/(.{4})(?=.)/g, '$1 ');
}

// ---- wire -----------------------------------------------------------------------------------

/** Reads fields off the front of bytes; every shortfall or excess is a refusal `reason`. */
class Reader {
  constructor(bytes, reason, what) {
    this.bytes = bytes;
    this.at = 0;
    this.reason = reason;
    this.what = what;
  }

  fail(detail) {
    return refuse(this.reason, `${this.what}: ${detail}`);
  }

  take(n) {
    if (n > this.bytes.length - this.at) this.fail('truncated');
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  u8() {
    return this.take(1)[0];
  }

  u32() {
    const b = this.take(4);
    return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  }

  /** A big-endian u64, as a BigInt: sequence numbers and times use the whole range. */
  u64() {
    const b = this.take(8);
    let n = 0n;
    for (const byte of b) n = (n << 8n) | BigInt(byte);
    return n;
  }

  tag(expected) {
    if (!equalBytes(this.take(expected.length), expected)) this.fail('wrong domain tag');
  }

  version() {
    if (this.u8() !== VERSION) this.fail('unsupported version');
  }

  algorithm() {
    const code = this.u8();
    if (!ALGORITHMS[code]) this.fail(`unknown algorithm ${code}`);
    return code;
  }

  /** A one-byte-length name: 1 to 64 ASCII letters, digits, '_' or '-', starting alnum. */
  name() {
    const raw = this.take(this.u8());
    const name = String.fromCharCode(...raw);
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name) || raw.length > MAX_NAME_LEN) {
      this.fail('invalid name');
    }
    return name;
  }

  /** A u32-length-prefixed part of at most `max` bytes (checked before taking it). */
  part(max) {
    const len = this.u32();
    if (len > max) this.fail(`part of ${len} bytes over the cap of ${max}`);
    return this.take(len);
  }

  finish() {
    if (this.at !== this.bytes.length) this.fail(`${this.bytes.length - this.at} trailing bytes`);
  }

  /**
   * The end of a root-signed item: everything read so far is the signed body, then the
   * signature at the fixed length of `algorithm`, then nothing.
   */
  signatureOf(algorithm) {
    const body = this.bytes.subarray(0, this.at);
    const signature = this.take(ALGORITHMS[algorithm].signatureLength);
    this.finish();
    return { body, signature };
  }
}

/** The root public key file: `sealcast-key\0`, version 1, kind 3, algorithm, key. */
export function decodeRootFile(bytes) {
  const r = new Reader(asBytes(bytes), 'bad_root_key', 'root key file');
  r.tag(TAG.keyFile);
  r.version();
  if (r.u8() !== ROOT_PUBLIC_KIND) r.fail('not a root public key');
  const algorithm = r.algorithm();
  const publicKey = r.take(ALGORITHMS[algorithm].publicKeyLength);
  r.finish();
  return { algorithm, publicKey };
}

/** `u32 length || statement || u32 length || signature` (SignedMedia, SignedEvent). */
export function decodeEnvelope(bytes, maxStatement) {
  const r = new Reader(asBytes(bytes), 'malformed_signature', 'envelope');
  const statement = r.part(maxStatement);
  const signature = r.part(MAX_SIGNATURE_LEN);
  r.finish();
  return { statement, signature };
}

/** Which kind of signed statement `bytes` are, by their domain tag; null if none. */
export function statementKind(bytes) {
  if (startsWith(bytes, TAG.part)) return 'part';
  if (startsWith(bytes, TAG.segment)) return 'segment';
  if (startsWith(bytes, TAG.event)) return 'event';
  return null;
}

/** A segment's (`SegmentStatement`) or a part's (`PartStatement`) statement, strictly. */
export function decodeStatement(bytes) {
  const kind = statementKind(bytes);
  if (kind !== 'segment' && kind !== 'part') refuse('malformed_signature', 'not a media statement');
  const r = new Reader(bytes, 'malformed_signature', `${kind} statement`);
  r.tag(TAG[kind]);
  const m = { kind, algorithm: r.algorithm(), keyId: toHex(r.take(16)) };
  m.stream = r.name();
  m.session = r.u64();
  m.rendition = r.name();
  m.sequence = r.u64();
  m.index = null;
  m.independent = null;
  m.programDateTimeMs = null;
  if (kind === 'part') {
    m.index = r.u32();
    const flag = r.u8();
    if (flag > 1) r.fail('independent is neither 0 nor 1');
    m.independent = flag === 1;
  }
  m.discontinuity = r.u64();
  m.durationUs = r.u64();
  if (kind === 'part') m.programDateTimeMs = r.u64();
  m.byteLength = r.u64();
  m.digest = r.take(32);
  r.finish();
  return m;
}

/** A control-event statement (`EventStatement`), strictly; the body stays bytes. */
export function decodeEvent(bytes) {
  const r = new Reader(bytes, 'malformed_signature', 'event statement');
  r.tag(TAG.event);
  const event = { kind: 'event', algorithm: r.algorithm(), keyId: toHex(r.take(16)) };
  event.issuedAtMs = r.u64();
  event.body = r.part(MAX_EVENT_LEN);
  r.finish();
  return event;
}

/**
 * A part-key delegation (`PartKeyStatement`, domain/src/wire/part_key.rs), strictly: the
 * certified key that signs it, the stream, session, rendition and run of segments whose
 * parts the delegated key may sign, and that key.
 */
export function decodePartKey(bytes) {
  const r = new Reader(bytes, 'malformed_signature', 'part-key delegation');
  r.tag(TAG.partKey);
  const d = { kind: 'part-key', algorithm: r.algorithm(), keyId: toHex(r.take(16)) };
  d.stream = r.name();
  d.session = r.u64();
  d.rendition = r.name();
  d.first = r.u64();
  d.last = r.u64();
  if (d.last < d.first || d.last - d.first > MAX_PART_KEY_RUN) r.fail('run of segments over the cap');
  d.delegatedAlgorithm = r.algorithm();
  d.publicKey = r.part(MAX_DELEGATED_KEY_LEN);
  if (d.publicKey.length !== ALGORITHMS[d.delegatedAlgorithm].publicKeyLength) r.fail('not a key of its algorithm');
  r.finish();
  return d;
}

/** An ingest certificate (`IngestCertificate::encode`), strictly; `body` is what is signed. */
export function decodeCertificate(bytes) {
  const r = new Reader(bytes, 'malformed_bundle', 'ingest certificate');
  r.tag(TAG.certificate);
  r.version();
  const algorithm = r.algorithm();
  const cert = { algorithm, keyId: toHex(r.take(16)), issuer: toHex(r.take(16)) };
  cert.node = r.name();
  cert.notBefore = r.u64();
  cert.notAfter = r.u64();
  if (cert.notAfter < cert.notBefore) r.fail('validity ends before it starts');
  cert.publicKey = r.take(ALGORITHMS[algorithm].publicKeyLength);
  return Object.assign(cert, r.signatureOf(algorithm));
}

/** A revocation (`Revocation::encode`), strictly. */
export function decodeRevocation(bytes) {
  const r = new Reader(bytes, 'malformed_bundle', 'revocation');
  r.tag(TAG.revocation);
  r.version();
  const algorithm = r.algorithm();
  const revocation = { algorithm, issuer: toHex(r.take(16)), keyId: toHex(r.take(16)) };
  revocation.revokedAt = r.u64();
  return Object.assign(revocation, r.signatureOf(algorithm));
}

/** A trust bundle (certs/src/signing/bundle.rs): every item decoded, none yet trusted. */
export function decodeBundle(bytes) {
  const r = new Reader(asBytes(bytes), 'malformed_bundle', 'trust bundle');
  r.tag(TAG.bundle);
  r.version();
  const list = (decode) => {
    const count = r.u32();
    if (count > MAX_BUNDLE_ITEMS) r.fail(`${count} items, over the cap`);
    const items = [];
    for (let i = 0; i < count; i += 1) items.push(decode(r.part(MAX_BUNDLE_ITEM_LEN)));
    return items;
  };
  const certificates = list(decodeCertificate);
  const revocations = list(decodeRevocation);
  r.finish();
  return { certificates, revocations };
}

/** The rendition description inside an init segment's statement: `{stream, name, init}`. */
function renditionOf(body) {
  let event;
  try {
    event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return refuse('malformed_signature', 'event body is not JSON');
  }
  if (!event || event.type !== 'rendition') refuse('wrong_kind', 'not a rendition description');
  const info = event.info;
  if (typeof event.stream !== 'string' || !info || typeof info.name !== 'string') {
    refuse('malformed_signature', 'rendition description without stream or name');
  }
  if (typeof info.init !== 'string') refuse('wrong_kind', 'the rendition has no init segment');
  const hex = info.init;
  if (hex.length === 0 || hex.length > 2 * MAX_INIT_LEN || hex.length % 2 || !/^[0-9a-f]*$/.test(hex)) {
    refuse('malformed_signature', 'init segment is not 1 to 16384 bytes of lowercase hex');
  }
  const init = new Uint8Array(hex.length / 2);
  for (let i = 0; i < init.length; i += 1) init[i] = parseInt(hex.substr(2 * i, 2), 16);
  return { stream: event.stream, rendition: info.name, init };
}

// ---- URLs -----------------------------------------------------------------------------------

const NAME = '[A-Za-z0-9][A-Za-z0-9_-]{0,63}';
const MEDIA_PATH = new RegExp(
  `^/(?:live/(${NAME})|vod/(${NAME})/([0-9a-f]{16}))/(${NAME})/` +
    '(?:(init)\\.mp4|(\\d{1,20})(?:\\.(\\d{1,10}))?\\.m4s|(\\d{1,20})\\.ts)$',
);

const RECORDING_TREE = new RegExp(`^/vod/(${NAME})/([0-9a-f]{16})/`);

function pathOf(url) {
  try {
    return new URL(url, globalThis.location ? globalThis.location.href : 'http://localhost/').pathname;
  } catch {
    return null;
  }
}

/**
 * What a fragment URL names (docs/architecture.md's layout): `{kind, stream, rendition,
 * session}` (session only for a recording, whose id is its publish session), or null.
 * Recordings have no parts.
 */
export function parseMediaUrl(url) {
  const path = pathOf(url);
  const m = path === null ? null : MEDIA_PATH.exec(path);
  if (!m) return null;
  if (m[3] && m[7] !== undefined) return null;
  const kind = m[5] ? 'init' : m[7] !== undefined ? 'part' : 'segment';
  return {
    kind,
    stream: m[1] || m[2],
    session: m[3] ? BigInt(`0x${m[3]}`) : null,
    rendition: m[4],
  };
}

/**
 * What a playback is of, from the URL the viewer opened (a master or media playlist):
 * `{ stream, session }` for a recording (`/vod/{stream}/{id}/…`), null for a live stream
 * and for anything else (the stricter). Never from a playlist: whoever serves one can
 * append `#EXT-X-ENDLIST` or list fragment URLs of its choosing.
 */
export function playbackOf(url) {
  const path = url === null || url === undefined ? null : pathOf(url);
  const m = path === null ? null : RECORDING_TREE.exec(path);
  return m ? { stream: m[1], session: BigInt(`0x${m[2]}`) } : null;
}

/** The sidecar of a media URL: the same URL with `.sig` after the path (query kept). */
export function sidecarUrl(url) {
  const u = new URL(url, globalThis.location ? globalThis.location.href : 'http://localhost/');
  u.pathname += '.sig';
  return u.href;
}

// ---- crypto backends ------------------------------------------------------------------------

/** Public key of RFC 8032's first test vector: a valid key to probe Ed25519 support with. */
const ED25519_PROBE = Uint8Array.from(
  'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'.match(/../g),
  (h) => parseInt(h, 16),
);

/** Verifies with the browser's own WebCrypto; imported keys cached by public key. */
class WebCryptoVerifier {
  constructor() {
    this.keys = new Map();
  }

  static params(algorithm) {
    return algorithm === ML_DSA_65
      ? { importFormat: 'raw-public', import: { name: 'ML-DSA-65' }, verify: { name: 'ML-DSA-65', context: MLDSA_CONTEXT } }
      : { importFormat: 'raw', import: { name: 'Ed25519' }, verify: { name: 'Ed25519' } };
  }

  /** Whether this browser verifies `algorithm` natively: importing a valid key tells. */
  static async supports(algorithm, sampleKey) {
    if (!globalThis.crypto || !crypto.subtle) return false;
    const p = WebCryptoVerifier.params(algorithm);
    try {
      await crypto.subtle.importKey(p.importFormat, sampleKey, p.import, false, ['verify']);
      return true;
    } catch {
      return false;
    }
  }

  async verify(algorithm, publicKey, message, signature) {
    const p = WebCryptoVerifier.params(algorithm);
    const id = `${algorithm}:${toHex(publicKey)}`;
    let key = this.keys.get(id);
    if (!key) {
      key = crypto.subtle.importKey(p.importFormat, publicKey, p.import, false, ['verify']);
      this.keys.set(id, key);
    }
    try {
      return await crypto.subtle.verify(p.verify, await key, signature, message);
    } catch {
      return false;
    }
  }
}

/**
 * Verifies with the vendored @noble libraries in a module worker (verify-worker.js), one
 * message per signature, so the main thread only posts and waits for an answer.
 */
class LibraryVerifier {
  constructor() {
    this.pending = new Map();
    this.next = 1;
    this.broken = null;
    try {
      this.worker = new Worker(new URL('./verify-worker.js', import.meta.url), { type: 'module', name: 'sealcast-verify' });
    } catch (error) {
      this.broken = new Refusal('verifier_unavailable', `no verification worker: ${error.message || error}`);
      return;
    }
    this.worker.addEventListener('message', (event) => {
      const { id, ok, error } = event.data || {};
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      if (error) waiter.reject(new Refusal('verifier_unavailable', error));
      else waiter.resolve(ok === true);
    });
    this.worker.addEventListener('error', (event) => {
      this.broken = new Refusal('verifier_unavailable', event.message || 'the verification worker failed');
      for (const waiter of this.pending.values()) waiter.reject(this.broken);
      this.pending.clear();
    });
  }

  verify(algorithm, publicKey, message, signature) {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.next;
    this.next += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Copies: a view would take its whole buffer along (a key's is the whole bundle).
      this.worker.postMessage({
        id,
        algorithm,
        publicKey: publicKey.slice(),
        message: message.slice(),
        signature: signature.slice(),
      });
    });
  }
}

/**
 * The verifier for each algorithm: native where the browser has it, unless `force` is
 * 'library' (a test hook: `?verify=library`, or `window.SEALCAST_VERIFY = 'library'` set
 * before the player loads). `mode` tells the viewer which path checks `rootAlgorithm`.
 */
export async function chooseCrypto(rootAlgorithm, rootKey, force) {
  let library = null;
  const lib = () => {
    if (!library) library = new LibraryVerifier();
    return library;
  };
  const byAlgorithm = {};
  for (const algorithm of [ML_DSA_65, ED25519]) {
    const sample = algorithm === rootAlgorithm ? rootKey : algorithm === ED25519 ? ED25519_PROBE : null;
    const native = force !== 'library' && sample && (await WebCryptoVerifier.supports(algorithm, sample));
    byAlgorithm[algorithm] = native ? 'native' : 'library';
  }
  const webcrypto = new WebCryptoVerifier();
  return {
    mode: byAlgorithm[rootAlgorithm] === 'native' ? MODE_WEBCRYPTO : MODE_LIBRARY,
    verify(algorithm, publicKey, message, signature) {
      const backend = byAlgorithm[algorithm] === 'native' ? webcrypto : lib();
      return backend.verify(algorithm, publicKey, message, signature);
    },
  };
}

// ---- trust ----------------------------------------------------------------------------------

/**
 * What a viewer trusts: the pinned root, the ingest keys it certified and the keys it
 * revoked, admitted item by item from trust bundles (each item root-signed; the bundle as a
 * whole is not, so a node can withhold a revocation but not forge one). Like the edges'
 * TrustStore: revocations only tighten (the earliest time per key holds), and of two
 * certificates for one key the one that runs longer is kept.
 */
export class Trust {
  constructor(root, backend) {
    this.root = root; // { algorithm, publicKey, keyId, fingerprint }
    this.backend = backend;
    // keyId hex -> { algorithm, publicKey, via, ... }. `via` names what vouches for the
    // key: 'certificate' (the root; with notBefore, notAfter, node) or 'delegation' (a
    // certified ingest key, for the parts of one stream, session, rendition and run of
    // segments: `delegation` holds the statement, whose keyId is the delegator's).
    this.keys = new Map();
    this.delegated = 0;
    this.revoked = new Map(); // keyId hex -> revokedAt (unix seconds, BigInt)
  }

  /** The root from its key file's bytes, with its fingerprint. */
  static async root(fileBytes) {
    const { algorithm, publicKey } = decodeRootFile(fileBytes);
    const digest = await keyDigest(algorithm, publicKey);
    return { algorithm, publicKey, keyId: toHex(digest.subarray(0, 16)), fingerprint: toHex(digest) };
  }

  /**
   * Admits what a bundle's items prove, revocations first; returns the refusals (an item
   * signed by another root, a key id that is not its key's). A bundle that does not
   * decode admits nothing.
   */
  async admitBundle(bytes) {
    const bundle = decodeBundle(bytes);
    const refused = [];
    const rootSigned = async (item) => {
      if (item.algorithm !== this.root.algorithm || item.issuer !== this.root.keyId) {
        refused.push('unknown_issuer');
        return false;
      }
      if (!(await this.backend.verify(this.root.algorithm, this.root.publicKey, item.body, item.signature))) {
        refused.push('bad_signature');
        return false;
      }
      return true;
    };
    for (const revocation of bundle.revocations) {
      if (!(await rootSigned(revocation))) continue;
      const held = this.revoked.get(revocation.keyId);
      if (held === undefined || revocation.revokedAt < held) this.revoked.set(revocation.keyId, revocation.revokedAt);
    }
    for (const cert of bundle.certificates) {
      const id = toHex((await keyDigest(cert.algorithm, cert.publicKey)).subarray(0, 16));
      if (id !== cert.keyId) {
        refused.push('malformed_bundle');
        continue;
      }
      if (!(await rootSigned(cert))) continue;
      const held = this.keys.get(cert.keyId);
      if (!held || cert.notAfter > held.notAfter) {
        this.keys.set(cert.keyId, {
          algorithm: cert.algorithm,
          publicKey: cert.publicKey,
          notBefore: cert.notBefore,
          notAfter: cert.notAfter,
          node: cert.node,
          via: 'certificate',
        });
      }
    }
    return refused;
  }

  /**
   * Admits a part-key delegation (the bytes of `{seq}.partkey`) whose signer may sign at
   * `at`: its envelope and statement decode strictly (malformed_signature), its signer
   * resolves like any certified key (revoked_key, unknown_key, wrong_algorithm,
   * expired_key) and its signature verifies (bad_signature). Keeps at most 256.
   */
  async admitDelegation(bytes, at) {
    const { statement, signature } = decodeEnvelope(asBytes(bytes), MAX_PART_KEY_LEN);
    if (!startsWith(statement, TAG.partKey)) refuse('malformed_signature', 'not a part-key delegation');
    const d = decodePartKey(statement);
    const signer = this.resolveKey(d.keyId, d.algorithm, at);
    if (signer.via !== 'certificate') refuse('unknown_key', 'a delegation signed by a delegated key');
    if (!(await this.backend.verify(d.algorithm, signer.publicKey, statement, signature))) {
      refuse('bad_signature', 'the part-key delegation');
    }
    const id = toHex((await keyDigest(d.delegatedAlgorithm, d.publicKey)).subarray(0, 16));
    if (this.keys.has(id)) return;
    if (this.delegated >= 256) {
      for (const [k, v] of this.keys) if (v.via === 'delegation') this.keys.delete(k);
      this.delegated = 0;
    }
    this.keys.set(id, { algorithm: d.delegatedAlgorithm, publicKey: d.publicKey, via: 'delegation', delegation: d });
    this.delegated += 1;
  }

  /**
   * The key that verifies a statement by `keyId` of `algorithm` signed at `at` (unix
   * seconds, BigInt), or a refusal: revoked_key (checked first, as on the edges),
   * unknown_key, wrong_algorithm, expired_key (outside the validity either side). A
   * delegated key verifies only a part (`scope`: its statement) of the stream, session and
   * rendition it was delegated for (wrong_stream, wrong_session, wrong_rendition) and of a
   * segment of its run (expired_delegation), and only while its delegator could sign.
   */
  resolveKey(keyId, algorithm, at, scope = null) {
    const revokedAt = this.revoked.get(keyId);
    if (revokedAt !== undefined && at >= revokedAt) refuse('revoked_key', `key ${keyId} revoked at ${revokedAt}`);
    const key = this.keys.get(keyId);
    if (!key) refuse('unknown_key', `no certificate for key ${keyId}`);
    if (key.algorithm !== algorithm) refuse('wrong_algorithm', `key ${keyId} is ${ALGORITHMS[key.algorithm].name}`);
    if (key.via === 'delegation') {
      const d = key.delegation;
      if (!scope || scope.kind !== 'part') refuse('unknown_key', `key ${keyId} signs parts only`);
      if (scope.stream !== d.stream) refuse('wrong_stream', `key ${keyId} was delegated for ${d.stream}`);
      if (scope.session !== d.session) refuse('wrong_session', `key ${keyId} was delegated for another session`);
      if (scope.rendition !== d.rendition) refuse('wrong_rendition', `key ${keyId} was delegated for ${d.rendition}`);
      if (scope.sequence < d.first || scope.sequence > d.last) {
        refuse('expired_delegation', `key ${keyId} was delegated for ${d.first}..${d.last}, not ${scope.sequence}`);
      }
      this.resolveKey(d.keyId, d.algorithm, at);
      return key;
    }
    if (at < key.notBefore || at > key.notAfter) {
      refuse('expired_key', `key ${keyId} valid ${key.notBefore}..${key.notAfter}, signed at ${at}`);
    }
    return key;
  }
}

// ---- the checks of one playback -------------------------------------------------------------

const MAX_REMEMBERED = 256;

/**
 * The checks one playback makes, fragment by fragment. Besides each fragment on its own
 * it keeps: the publish session, pinned from the first fragment and allowed to change only
 * where the discontinuity sequence grows; and continuity across the stream (every rung
 * shares sequence numbers): after sequence N comes N (another part of it, another rung's
 * copy) or N + 1. A jump ahead is allowed only over numbers this verifier refused or the
 * playlist marks as gaps; a step back only to the previous number on another rung (hls.js
 * aligning a rung switch), or to an earlier part of the same segment after a part of it was
 * refused (hls.js restarting at an independent part). A player that moves on purpose (a
 * seek, a flushed buffer, a restart) calls `reposition()` first.
 */
export class PlaybackVerifier {
  /**
   * `trust`: a Trust; `refreshTrust`: async, fetches the bundle again (called once per
   * unknown key, at most every few seconds); `fetchDelegation`: async, the bytes at a URL
   * (`/live/{stream}/{rendition}/{seq}.partkey` of a part's statement, with the part's
   * query) or null, asked once per unknown part key and segment; `now`: unix milliseconds;
   * `playback`: the URL the viewer opened (see `playbackOf`; none: live).
   */
  constructor(trust, { refreshTrust = null, fetchDelegation = null, now = () => Date.now(), playback = null } = {}) {
    this.trust = trust;
    this.recording = playbackOf(playback);
    this.refreshTrust = refreshTrust;
    this.fetchDelegation = fetchDelegation;
    this.askedDelegations = new Set(); // "stream/rendition/seq/keyId" asked for
    this.now = now;
    this.pinned = null; // { stream, session, discontinuity }
    this.position = null; // { sequence, part, rendition }
    this.free = true;
    this.refusedAt = new Set(); // what was refused since the last fragment verified: see remember
    this.inits = new Map(); // "stream/rendition" -> issuedAtMs of its verified description
  }

  /** The player moved on purpose: the next fragment may be any number. */
  reposition() {
    this.free = true;
  }

  /**
   * Checks one fragment. `f`: { url, bytes, sidecar (bytes or null), sequence (hls.js
   * frag.sn), part (index or null), discontinuity (frag.cc), duration (seconds, the
   * playlist's), gap (sequence -> bool: the playlist marks it EXT-X-GAP) }. Whether the
   * playlist says it is live does not count (see `signedAt`).
   * Resolves { ok: true } or { ok: false, reason, detail }; never throws.
   */
  async check(f) {
    const target = parseMediaUrl(f.url);
    try {
      if (!target) refuse('unexpected_url', f.url);
      const verdict = await this.checkSigned(target, f);
      if (target.kind !== 'init') this.advance(target, verdict, f);
      return { ok: true };
    } catch (thrown) {
      // Anything but a refusal is the verifier failing (a digest WebCrypto would not take):
      // the fragment is refused all the same.
      const error = thrown instanceof Refusal ? thrown : new Refusal('verifier_unavailable', String(thrown));
      if (target && target.kind !== 'init' && Number.isFinite(f.sequence)) this.remember(f);
      return { ok: false, reason: error.reason, detail: error.detail };
    }
  }

  remember(f) {
    if (this.refusedAt.size >= MAX_REMEMBERED) this.refusedAt.clear();
    // "N~": something of sequence N was refused; "N.k": its part k was.
    this.refusedAt.add(`${f.sequence}~`);
    if (f.part !== null && f.part !== undefined) this.refusedAt.add(`${f.sequence}.${f.part}`);
  }

  /** Envelope, statement, key, signature, then what the statement says. */
  async checkSigned(target, f) {
    const sidecar = f.sidecar ? asBytes(f.sidecar) : null;
    if (!sidecar || sidecar.length === 0) refuse('missing_signature');
    const init = target.kind === 'init';
    // Read under the larger cap first, so that a genuine statement of another kind is named
    // as such; a media statement over its own cap is malformed all the same.
    const { statement, signature } = decodeEnvelope(sidecar, MAX_EVENT_STATEMENT_LEN);
    const kind = statementKind(statement);
    const wanted = init ? 'event' : target.kind;
    if (kind === null) refuse('malformed_signature', 'unknown domain tag');
    if (kind !== wanted) refuse('wrong_kind', `a ${kind} statement for a ${target.kind}`);
    if (!init && statement.length > MAX_MEDIA_STATEMENT_LEN) refuse('malformed_signature', 'statement over its cap');
    const signed = init ? decodeEvent(statement) : decodeStatement(statement);

    const at = this.signedAt(target, signed, f);
    let key;
    try {
      key = this.trust.resolveKey(signed.keyId, signed.algorithm, at, signed);
    } catch (error) {
      if (!(error instanceof Refusal) || error.reason !== 'unknown_key') throw error;
      if (signed.kind === 'part' && this.fetchDelegation && !this.trust.keys.has(signed.keyId)) {
        // A key an ingest delegated for this run of parts: its delegation sits beside the
        // parts of the stream, rendition and segment the statement names.
        await this.admitDelegationFor(signed, f.url, at);
      } else if (this.refreshTrust) {
        await this.refreshTrust();
      } else {
        throw error;
      }
      key = this.trust.resolveKey(signed.keyId, signed.algorithm, at, signed);
    }
    const valid = await this.trust.backend.verify(signed.algorithm, key.publicKey, statement, signature);
    if (!valid) refuse('bad_signature');

    const bytes = asBytes(f.bytes);
    if (init) {
      const rendition = renditionOf(signed.body);
      if (rendition.stream !== target.stream) refuse('wrong_stream', rendition.stream);
      if (rendition.rendition !== target.rendition) refuse('wrong_rendition', rendition.rendition);
      if (bytes.length !== rendition.init.length) refuse('wrong_length', `${bytes.length} bytes, signed ${rendition.init.length}`);
      if (!equalBytes(bytes, rendition.init)) refuse('digest_mismatch');
      if (this.inits.size >= MAX_REMEMBERED) this.inits.clear();
      this.inits.set(`${target.stream}/${target.rendition}`, signed.issuedAtMs);
      return signed;
    }
    this.checkFields(target, signed, f);
    if (BigInt(bytes.length) !== signed.byteLength) refuse('wrong_length', `${bytes.length} bytes, signed ${signed.byteLength}`);
    if (!equalBytes(await sha256(bytes), signed.digest)) refuse('digest_mismatch');
    this.checkSession(signed);
    this.checkContinuity(target, signed, f);
    return signed;
  }

  /** Fetches and admits the delegation of part statement `m` (once per key and segment). */
  async admitDelegationFor(m, url, at) {
    const asked = `${m.stream}/${m.rendition}/${m.sequence}/${m.keyId}`;
    if (this.askedDelegations.has(asked)) return;
    if (this.askedDelegations.size >= MAX_REMEMBERED) this.askedDelegations.clear();
    this.askedDelegations.add(asked);
    const u = new URL(url, globalThis.location ? globalThis.location.href : 'http://localhost/');
    u.pathname = `/live/${m.stream}/${m.rendition}/${m.sequence}.partkey`;
    let bytes = null;
    try {
      bytes = await this.fetchDelegation(u.href);
    } catch {
      bytes = null;
    }
    if (bytes && bytes.length) await this.trust.admitDelegation(bytes, at);
  }

  /**
   * When a statement counts as signed, in unix seconds, for revocation and validity. Live:
   * the viewer's clock, as the edges do (a stolen key can state any time, the clock it
   * cannot). A fragment of the recording the viewer opened (its URL under that
   * recording's `/vod/{stream}/{id}/`): the time the statement states (an event's issue
   * time) or, for a segment, which states none, the issue time of its rendition's
   * description verified in this playback; never later than now. So a recording made
   * before a key was rotated out keeps playing, and what an ingest signed after its
   * revocation is refused; a thief's backdated recording is not caught. Which of the two
   * is decided by the URL the viewer opened and the fragment's own URL, never by the
   * playlist (`#EXT-X-ENDLIST` on a live stream changes nothing).
   */
  signedAt(target, signed, f) {
    const now = BigInt(Math.floor(this.now() / 1000));
    const r = this.recording;
    if (!r || target.session === null || target.stream !== r.stream || target.session !== r.session) return now;
    let ms = null;
    if (signed.kind === 'event') ms = signed.issuedAtMs;
    else if (signed.kind === 'part') ms = signed.programDateTimeMs;
    else ms = this.inits.get(`${target.stream}/${target.rendition}`) ?? null;
    if (ms === null) return now;
    const at = ms / 1000n;
    return at < now ? at : now;
  }

  checkFields(target, m, f) {
    if (m.stream !== target.stream) refuse('wrong_stream', m.stream);
    if (m.rendition !== target.rendition) refuse('wrong_rendition', m.rendition);
    if (target.session !== null && m.session !== target.session) refuse('wrong_session', 'not the recording in the URL');
    if (!Number.isSafeInteger(f.sequence) || m.sequence !== BigInt(f.sequence)) {
      refuse('wrong_sequence', `signed ${m.sequence}, asked for ${f.sequence}`);
    }
    if (m.kind === 'part' && m.index !== f.part) refuse('wrong_part', `signed part ${m.index}, asked for ${f.part}`);
    if (!Number.isSafeInteger(f.discontinuity) || m.discontinuity !== BigInt(f.discontinuity)) {
      refuse('wrong_discontinuity', `signed ${m.discontinuity}, the playlist says ${f.discontinuity}`);
    }
    if (typeof f.duration === 'number' && Number.isFinite(f.duration)) {
      const signed = Number(m.durationUs) / 1e6;
      if (Math.abs(signed - f.duration) > DURATION_TOLERANCE_S) {
        refuse('wrong_duration', `signed ${signed} s, the playlist says ${f.duration} s`);
      }
    }
  }

  checkSession(m) {
    const p = this.pinned;
    if (!p || p.stream !== m.stream) return;
    if (m.session !== p.session && m.discontinuity <= p.discontinuity) {
      refuse('wrong_session', 'the publish session changed without a discontinuity');
    }
  }

  checkContinuity(target, m, f) {
    const last = this.position;
    if (this.free || !last) return;
    const seq = m.sequence;
    const part = m.kind === 'part' ? m.index : null;
    const sameRung = last.rendition === target.rendition;
    const refused = (key) => this.refusedAt.has(key);
    const gap = (n) => typeof f.gap === 'function' && f.gap(Number(n));
    if (seq === last.sequence) {
      if (!sameRung) return;
      if (part !== null && last.part !== null) {
        // Back within the segment only to recover from a part of it refused since: a player
        // restarts at an independent part (hls.js does).
        if (part <= last.part && !refused(`${seq}~`)) {
          refuse('repeated_sequence', `part ${seq}.${part} again`);
        }
        for (let i = last.part + 1; i < part; i += 1) {
          if (!refused(`${seq}.${i}`)) refuse('skipped_sequence', `part ${seq}.${i} skipped`);
        }
        return;
      }
      if (part === null && last.part !== null) return; // the whole segment after its parts
      refuse('repeated_sequence', `${seq} again`);
    }
    if (seq === last.sequence + 1n) return;
    if (seq > last.sequence) {
      for (let n = last.sequence + 1n; n < seq; n += 1n) {
        if (!refused(`${n}~`) && !gap(n)) refuse('skipped_sequence', `${n} skipped`);
      }
      return;
    }
    if (!sameRung && seq === last.sequence - 1n) return;
    refuse('reordered_sequence', `${seq} after ${last.sequence}`);
  }

  /** A fragment verified: pin the session, move the position on. */
  advance(target, m) {
    if (!this.pinned || this.pinned.stream !== m.stream || m.session !== this.pinned.session) {
      this.pinned = { stream: m.stream, session: m.session, discontinuity: m.discontinuity };
    } else if (m.discontinuity > this.pinned.discontinuity) {
      this.pinned.discontinuity = m.discontinuity;
    }
    const part = m.kind === 'part' ? m.index : null;
    const last = this.position;
    // A rung's copy of an earlier number (a rung switch aligning) does not move it back.
    if (!last || this.free || m.sequence > last.sequence || (m.sequence === last.sequence && target.rendition === last.rendition)) {
      this.position = { sequence: m.sequence, part, rendition: target.rendition };
    }
    this.free = false;
    this.refusedAt.clear();
  }
}

// ---- fetching -------------------------------------------------------------------------------

/**
 * GETs `url` and reads at most `max` bytes of its body: null for a 404 (nothing served),
 * an error for anything else that is not a 2xx or for a longer body.
 */
export async function fetchBounded(url, max, { signal, cache = 'default' } = {}) {
  const response = await fetch(url, { signal, cache, credentials: 'same-origin' });
  if (response.status === 404 || response.status === 410) return null;
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`.trim());
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) throw new Error(`${declared} bytes, over ${max}`);
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > max) throw new Error(`over ${max} bytes`);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > max) {
      reader.cancel().catch(() => {});
      throw new Error(`over ${max} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

// ---- the player's side ----------------------------------------------------------------------

export const ROOT_PATH = '/trust/v1/root.pub';
export const BUNDLE_PATH = '/trust/v1/bundle';
/** How often a playback may fetch the bundle again for a key it does not know. */
const REFRESH_MIN_MS = 5000;
/** How old the bundle may grow while fragments are checked (revocations arrive in it). */
const REFRESH_EVERY_MS = 60000;
/** How long the root key or the bundle may take to arrive. */
const TRUST_TIMEOUT_MS = 10000;

function timeout(ms) {
  return typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(ms) : undefined;
}
/** Most loads kept in `tally.handed`. */
const MAX_LISTED_HANDED = 2000;

/** The loads of every verifying loader, numbered: a refusal and a handed load carry it. */
let loadsStarted = 0;

/** Most refusals kept in `tally.refused` (the count goes on in `refusedCount`). */
const MAX_LISTED_REFUSALS = 500;

/**
 * The verification mode forced by the page: 'library' with `?verify=library` in the
 * page's URL or `window.SEALCAST_VERIFY = 'library'` set before the player loads (tests of
 * the library path in a browser that has WebCrypto ML-DSA), else null.
 */
export function forcedMode() {
  const flag = globalThis.SEALCAST_VERIFY;
  if (flag === 'library') return 'library';
  try {
    if (new URLSearchParams(globalThis.location.search).get('verify') === 'library') return 'library';
  } catch {
    // no location (a worker): nothing forced
  }
  return null;
}

/**
 * The root fingerprint an operator pinned in the page: `<meta name="sealcast-root"
 * content="…">` with the 64 hex digits of SHA-256(algorithm code || root public key)
 * (spaces and colons allowed between them), or null when the page pins none and the
 * root key from the page's origin is taken as it is.
 */
export function pinnedFingerprint(doc = globalThis.document) {
  const meta = doc && doc.querySelector('meta[name="sealcast-root"]');
  const value = meta ? (meta.getAttribute('content') || '').replace(/[\s:]/g, '').toLowerCase() : '';
  if (!value) return null;
  return value;
}

/**
 * Fetches the root key (checked against the page's pin, if any), picks the crypto path
 * and admits the bundle. Resolves { trust, mode, fingerprint, refresh } or, when there is
 * no usable root, { failure: Refusal, mode } — every fragment is then refused with it.
 */
export async function openTrust({ pin = pinnedFingerprint(), force = forcedMode() } = {}) {
  if (!globalThis.isSecureContext || !globalThis.crypto || !crypto.subtle) {
    return { failure: null, mode: MODE_INSECURE };
  }
  let root;
  try {
    const file = await fetchBounded(ROOT_PATH, MAX_ROOT_FILE, { cache: 'no-cache', signal: timeout(TRUST_TIMEOUT_MS) });
    if (!file) return { failure: new Refusal('no_root_key', `${ROOT_PATH} not served`), mode: '' };
    root = await Trust.root(file);
  } catch (error) {
    const failure = error instanceof Refusal ? error : new Refusal('no_root_key', String(error.message || error));
    return { failure, mode: '' };
  }
  if (pin !== null && pin !== root.fingerprint) {
    return {
      failure: new Refusal('root_mismatch', `the page pins ${pin}, the server's key is ${root.fingerprint}`),
      mode: '',
      fingerprint: root.fingerprint,
    };
  }
  const backend = await chooseCrypto(root.algorithm, root.publicKey, force);
  const trust = new Trust(root, backend);
  let last = 0;
  let running = null;
  const refresh = (force = false) => {
    if (running) return running;
    if (!force && performance.now() - last < REFRESH_MIN_MS) return Promise.resolve();
    last = performance.now();
    running = fetchBounded(BUNDLE_PATH, MAX_BUNDLE, { cache: 'no-cache', signal: timeout(TRUST_TIMEOUT_MS) })
      .then((bytes) => (bytes ? trust.admitBundle(bytes) : []))
      .catch((error) => console.warn('sealcast: trust bundle not admitted', error))
      .finally(() => {
        running = null;
      });
    return running;
  };
  await refresh(true);
  // Called on every check: fetches the bundle again, in the background, once it is a
  // minute old, so a revocation reaches a viewer who keeps watching.
  const keepFresh = () => {
    if (performance.now() - last >= REFRESH_EVERY_MS) refresh(true);
  };
  return { trust, mode: backend.mode, fingerprint: root.fingerprint, refresh, keepFresh };
}

/**
 * One playback's verification: its PlaybackVerifier over the page's trust, and the tally
 * it keeps in `tally` (`window.sealcast.verification`): { mode, verified, refused: [{ url,
 * reason, id }], refusedCount, handed: [{ id, url }], fingerprint, timeMs (time spent
 * checking) }. `id` numbers the fragment loader's loads: `handed` lists the loads whose
 * bytes went to hls.js (the last MAX_LISTED_HANDED), so a refused load's id never appears
 * there.
 */
export class VerificationSession {
  /** `playback`: the URL the viewer opened (PlaybackVerifier's option; none: live). */
  constructor(trustPromise, tally, playback = null) {
    this.tally = tally;
    this.verifier = null;
    this.ready = trustPromise.then((opened) => {
      this.opened = opened;
      if (opened.trust) {
        this.verifier = new PlaybackVerifier(opened.trust, {
          refreshTrust: () => opened.refresh(),
          fetchDelegation: (url) => fetchBounded(url, MAX_PART_KEY_SIDECAR),
          playback,
        });
      }
      return opened;
    });
  }

  /** Load `id` (of `url`) was verified and its bytes handed to hls.js. */
  handed(id, url) {
    if (!this.tally.handed) this.tally.handed = [];
    this.tally.handed.push({ id, url });
    if (this.tally.handed.length > MAX_LISTED_HANDED) this.tally.handed.shift();
  }

  /** See PlaybackVerifier.reposition. */
  reposition() {
    if (this.verifier) this.verifier.reposition();
  }

  /** Checks `f` (PlaybackVerifier.check's argument) and counts the verdict. */
  async check(f) {
    const opened = await this.ready;
    const started = performance.now();
    let verdict;
    if (!this.verifier) {
      const failure = opened.failure || new Refusal('no_root_key');
      verdict = { ok: false, reason: failure.reason, detail: failure.detail };
    } else {
      opened.keepFresh();
      verdict = await this.verifier.check(f);
    }
    this.tally.timeMs += performance.now() - started;
    if (verdict.ok) {
      this.tally.verified += 1;
    } else {
      this.tally.refusedCount += 1;
      this.tally.refused.push({ url: f.url, reason: verdict.reason, id: f.load });
      if (this.tally.refused.length > MAX_LISTED_REFUSALS) this.tally.refused.shift();
      console.warn(`sealcast: refused ${f.url}: ${verdict.reason}${verdict.detail ? ` (${verdict.detail})` : ''}`);
    }
    return verdict;
  }
}

/** The HTTP status a refused fragment is reported to hls.js with: one it retries. */
export const REFUSED_STATUS = 502;
/**
 * How many fresh copies of a refused fragment the loader fetches and checks before hls.js
 * hears of the refusal: a cache or proxy that alters some responses must not stop playback
 * while a clean copy can be had (issue 45 item 18).
 */
export const REFETCHES = 2;
/** Refusals a fresh copy of the fragment cannot cure: the page's trust is at fault. */
const NOT_REFETCHED = new Set(['no_root_key', 'bad_root_key', 'root_mismatch', 'verifier_unavailable']);
/** Largest fragment fetched again (a segment of a high rung is a few megabytes). */
const MAX_FRAGMENT = 64 * 1024 * 1024;
/** How long a sidecar may take when hls.js's configuration gives no timeout. */
const SIDECAR_TIMEOUT_MS = 20000;

/**
 * An hls.js fragment loader class (`fLoader`: segments, parts, init segments) that wraps
 * `Base` (hls.js's default loader): it loads the bytes and the sidecar together and calls
 * hls.js back only once the fragment verified: the whole payload through `onProgress`
 * (where hls.js feeds its transmuxer) and then `onSuccess`. A refused fragment is
 * fetched again, past every HTTP cache, up to REFETCHES times (see settleChecked), each
 * copy checked and counted; when none verifies it ends in `onError` with REFUSED_STATUS,
 * so hls.js treats it as missing (retry, another rung, another node); nothing refused
 * ever reaches the media buffer. `describe(context)` gives
 * the fields hls.js knows about the fragment (see PlaybackVerifier.check); `onVerdict`
 * (optional) hears every verdict with the context (what tests assert on).
 */
export function verifyingLoader(Base, session, describe, onVerdict = null) {
  return class VerifyingLoader {
    constructor(config) {
      this.inner = new Base(config);
      this.callbacks = null;
      this.sidecar = null;
      this.timer = 0;
      // 'idle', 'loading' (the inner loader has it), 'checking' (bytes in, verdict not
      // yet), 'done' (hls.js was called back, or let go).
      this.state = 'idle';
    }

    // hls.js reads and assigns `loader.stats` right after constructing a loader.
    get stats() {
      return this.inner.stats;
    }

    set stats(value) {
      this.inner.stats = value;
    }

    get context() {
      return this.inner.context;
    }

    load(context, config, callbacks) {
      this.callbacks = callbacks;
      this.state = 'loading';
      loadsStarted += 1;
      const id = loadsStarted;
      const controller = new AbortController();
      this.sidecar = controller;
      this.timer = setTimeout(() => controller.abort(), (config && config.timeout) || SIDECAR_TIMEOUT_MS);
      const target = parseMediaUrl(context.url);
      const max = target && target.kind === 'init' ? MAX_INIT_SIDECAR : MAX_MEDIA_SIDECAR;
      const sidecar = fetchBounded(sidecarUrl(context.url), max, { signal: controller.signal }).catch(() => null);
      const settle = () => {
        this.state = 'done';
        this.stopSidecar();
      };
      // The inner loader's callbacks count only while it has the load: hls.js destroys a
      // loader from inside its own callbacks, and an aborted inner loader still reports.
      const live = () => this.state === 'loading';
      this.inner.load(context, config, {
        onSuccess: (response, stats, ctx, details) => {
          if (!live()) return;
          this.state = 'checking';
          const limit = (config && config.timeout) || SIDECAR_TIMEOUT_MS;
          this.settleChecked(ctx, stats, details, limit, max, { response, sidecar, id }).then((done) => {
            if (!done || this.state !== 'checking') return;
            settle();
            const { verdict, response: verified, id: load } = done;
            if (verdict.ok) {
              session.handed(load, ctx.url);
              if (callbacks.onProgress) callbacks.onProgress(stats, ctx, verified.data, details);
              callbacks.onSuccess(verified, stats, ctx, details);
            } else {
              const text = `refused by the player: ${verdict.reason}`;
              callbacks.onError({ code: REFUSED_STATUS, text }, ctx, details, stats);
            }
          });
        },
        // Never forwarded: these are bytes not verified yet (a progressive loader's chunks,
        // or the whole payload just before onSuccess); they are passed on once verified.
        onProgress: callbacks.onProgress ? () => {} : undefined,
        onError: (...args) => {
          if (!live()) return;
          settle();
          callbacks.onError(...args);
        },
        onTimeout: (...args) => {
          if (!live()) return;
          settle();
          callbacks.onTimeout(...args);
        },
        onAbort: (...args) => {
          if (!live()) return;
          settle();
          if (callbacks.onAbort) callbacks.onAbort(...args);
        },
      });
    }

    /**
     * The verdict on the fragment loaded (`first`: the inner loader's response, the
     * promised sidecar and the load's id) and, while it is refused for something a fresh
     * copy may cure, on up to REFETCHES fresh copies: the fragment and its sidecar fetched
     * again at the same URL (query and token kept), past every HTTP cache (`reload`: the
     * browser's cache would hand back the very bytes just refused, and is overwritten), so
     * through the load balancer to whichever node it picks. Resolves { verdict, response,
     * id } (the copy judged last, its load's id), or null once let go.
     */
    async settleChecked(ctx, stats, details, limit, max, first) {
      const judge = async (bytes, sidecar, load) => {
        let verdict;
        try {
          verdict = await session.check({ ...describe(ctx), url: ctx.url, bytes, sidecar, load });
        } catch (error) {
          verdict = { ok: false, reason: 'verifier_unavailable', detail: String(error) };
        }
        if (onVerdict) onVerdict(ctx, verdict);
        return verdict;
      };
      let { response, id } = first;
      const sidecar = await first.sidecar;
      // Let go while its sidecar was on the way (hls.js switched rungs, sought, or
      // stopped): no verdict, as nothing is handed on; the aborted sidecar is not a refusal.
      if (this.state !== 'checking') return null;
      let verdict = await judge(response.data, sidecar, id);
      for (let n = 0; n < REFETCHES && !verdict.ok && !NOT_REFETCHED.has(verdict.reason); n += 1) {
        if (this.state !== 'checking') return null;
        this.stopSidecar();
        const controller = new AbortController();
        this.sidecar = controller;
        this.timer = setTimeout(() => controller.abort(), limit);
        const again = { signal: controller.signal, cache: 'reload' };
        const [media, sidecar] = await Promise.all([
          fetchBounded(ctx.url, MAX_FRAGMENT, again).catch(() => null),
          fetchBounded(sidecarUrl(ctx.url), max, again).catch(() => null),
        ]);
        if (this.state !== 'checking') return null;
        // Not served any more, or the network failed: hls.js hears of the refusal and
        // retries, or gives up, by its own policy.
        if (!media) break;
        loadsStarted += 1;
        id = loadsStarted;
        response = { ...response, data: media.buffer };
        stats.loaded = media.byteLength;
        stats.total = media.byteLength;
        stats.loading.end = performance.now();
        verdict = await judge(media, sidecar, id);
      }
      return { verdict, response, id };
    }

    stopSidecar() {
      clearTimeout(this.timer);
      if (this.sidecar) this.sidecar.abort();
    }

    abort() {
      const state = this.state;
      this.stopSidecar();
      if (state === 'loading') {
        this.inner.abort(); // which reports the abort through the wrapped onAbort
        return;
      }
      this.state = 'done';
      this.inner.abort();
      // Bytes in, verdict pending: the inner loader is done, so the abort is reported here.
      if (state === 'checking' && this.callbacks && this.callbacks.onAbort) {
        this.stats.aborted = true;
        this.callbacks.onAbort(this.stats, this.context, null);
      }
    }

    destroy() {
      this.state = 'done';
      this.callbacks = null;
      this.stopSidecar();
      this.inner.destroy();
    }

    getCacheAge() {
      return typeof this.inner.getCacheAge === 'function' ? this.inner.getCacheAge() : null;
    }

    getResponseHeader(name) {
      return typeof this.inner.getResponseHeader === 'function' ? this.inner.getResponseHeader(name) : null;
    }
  };
}
