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
// - C2paLiveValidator: the C2PA 2.3 live-video data in the media bytes (docs/provenance.md,
//   "What the player checks"), checked after our own statement verified a fragment: each
//   init segment's manifest (anchored in the pinned root by `io.sealcast.provenance-anchor`)
//   and each segment's and part's VSI `emsg`. Sans-IO; a refusal's reason is the C2PA
//   status code.
// - openVerification / verifyingLoader: what the player wires in: the trust material
//   fetched from the page's origin and an hls.js fragment loader (`fLoader`) that hands
//   hls.js the bytes only once they verified (our statement, then C2PA).
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
// and the C2PA status codes of C2paLiveValidator (C2PA 2.3 §15, §19.7; the Rust validator's,
// certs::c2pa::validate, `Code`), once our statement verified the same bytes:
//   livevideo.init.invalid        the init segment's manifest store does not parse, or the
//                                 init segment carries media (mdat)
//   signingCredential.untrusted   no provenance anchor signed by the pinned root (valid now),
//                                 or the claim signer does not chain to the CA it anchors
//   signingCredential.expired     the claim signer's or the CA's certificate is not valid now
//   signingCredential.revoked     the root revoked the claim signer or the CA (by its
//                                 credential id, in the trust bundle), at its init segment
//                                 or at any of its fragments since
//   io.sealcast.cosignature.mismatch  the manifest's co-signature (ours, post-quantum) is not
//                                 by an ingest key the root certified, or does not verify
//   claimSignature.mismatch       the claim signature does not verify (or its alg is not
//                                 its signer's key's)
//   algorithm.unsupported         the claim signature's alg is neither EdDSA (-8) nor ES256
//                                 (-7): C2PA's ES384/512 and PS256/384/512 are not supported
//   assertion.hashedURI.mismatch  an assertion is not the one the claim hashed
//   assertion.bmffHash.mismatch   the init segment is not the one the manifest hashed
//   livevideo.sessionkey.invalid  a session key is not bound to the claim signer
//   livevideo.segment.invalid     a segment's or part's VSI is missing, by another key, over
//                                 other bytes, of another manifest, replayed or out of time
// An init segment without C2PA data is no refusal: its rendition is unsigned (counted in
// `provenance.unsigned`), and so are its fragments.
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
  thumbnail: ascii('sealcast/v1/thumbnail\0'),
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
export const MAX_EVENT_STATEMENT_LEN = 8 + TAG.event.length + 1 + 16 + 8 + 4 + MAX_EVENT_LEN;
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
/** A thumbnail's JPEG at most (`domain::MAX_THUMBNAIL_BYTES`), and its statement. */
export const MAX_THUMBNAIL_BYTES = 256 * 1024;
const MAX_THUMBNAIL_STATEMENT_LEN = 1024;
/** The largest `thumbnail.jpg.sig`. */
export const MAX_THUMBNAIL_SIDECAR = 8 + MAX_THUMBNAIL_STATEMENT_LEN + MAX_SIGNATURE_LEN;
/** Most provenance anchors delivered apart, and their PEM's length (certs' MAX_DELIVERED*). */
const MAX_DELIVERED_ANCHORS = 64;
const MAX_DELIVERED_ANCHORS_LEN = 320 * 1024;

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

/**
 * A thumbnail's statement (`ThumbnailStatement`), strictly: tag, algorithm, key id,
 * stream, session, media sequence, capture time (ms), width, height, byte length, digest.
 */
export function decodeThumbnail(bytes) {
  const r = new Reader(bytes, 'malformed_signature', 'thumbnail statement');
  r.tag(TAG.thumbnail);
  const t = { kind: 'thumbnail', algorithm: r.algorithm(), keyId: toHex(r.take(16)) };
  t.stream = r.name();
  t.session = r.u64();
  t.sequence = r.u64();
  t.capturedMs = r.u64();
  t.width = r.u32();
  t.height = r.u32();
  t.byteLength = r.u64();
  if (t.byteLength > BigInt(MAX_THUMBNAIL_BYTES)) r.fail('a thumbnail over the size cap');
  t.digest = r.take(32);
  r.finish();
  return t;
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
 * caller may skip (`gap`: the playlist marks them as gaps, or the player holds their media,
 * verified before); a step back only to the previous number on another rung (hls.js
 * aligning a rung switch), to the previous number on the same rung right after switching to
 * it and then to the switch fragment again (hls.js backtracking), or to an earlier part of
 * the same segment after a part of it was refused (hls.js restarting at an independent part). A player that moves on purpose (a
 * seek, a flushed buffer, a restart) calls `reposition()` first.
 */
export class PlaybackVerifier {
  /**
   * `trust`: a Trust; `refreshTrust`: async, fetches the bundle again (called once per
   * unknown key, at most every few seconds); `fetchDelegation`: async, the bytes at a URL
   * (`/live/{stream}/{rendition}/{seq}.partkey` of a part's statement, with the part's
   * query) or null, asked once per unknown part key and segment; `carriedDelegation`: the
   * bytes the page already holds for such a URL (MoQ's statements track) or null, tried
   * first, the URL fetched when they do not give the key; `now`: unix milliseconds;
   * `playback`: the URL the viewer opened (see `playbackOf`; none: live); `provenance`:
   * async, a further check of a fragment whose statement verified (the player's C2PA
   * check), called with `{ back }` (the fragment is a step back on its rung that
   * continuity allowed: see `checkContinuity`), resolving null or a refusal `{ reason,
   * detail }`, made before the fragment counts for continuity.
   */
  constructor(trust, { refreshTrust = null, fetchDelegation = null, carriedDelegation = null, now = () => Date.now(), playback = null, provenance = null } = {}) {
    this.trust = trust;
    this.provenance = provenance;
    this.recording = playbackOf(playback);
    this.refreshTrust = refreshTrust;
    this.fetchDelegation = fetchDelegation;
    this.carriedDelegation = carriedDelegation;
    this.askedDelegations = new Set(); // "stream/rendition/seq/keyId" asked for
    this.now = now;
    this.pinned = null; // { stream, session, discontinuity }
    this.position = null; // { sequence, part, rendition }
    // The position is the first fragment taken on its rung after a switch from another and
    // has not moved since: hls.js may step back one segment on the new rung (its backtrack
    // when the switch fragment cannot start playback), then load that fragment again.
    this.switched = false;
    this.free = true;
    this.moves = 0; // repositions so far: a check that saw one happen does not advance
    this.refusedAt = new Set(); // what was refused since the last fragment verified: see remember
    this.inits = new Map(); // "stream/rendition" -> issuedAtMs of its verified description
  }

  /**
   * The player moved on purpose: the next fragment may be any number. A check still in
   * flight then (hls.js let go of its fragment when it flushed) gives its verdict but does
   * not move the position: the player will not hold that fragment.
   */
  reposition() {
    this.free = true;
    this.moves += 1;
  }

  /**
   * Checks one fragment. `f`: { url, bytes, sidecar (bytes or null), sequence (hls.js
   * frag.sn), part (index or null), discontinuity (frag.cc), duration (seconds, the
   * playlist's), gap (sequence -> bool: it may be skipped, the playlist marks it EXT-X-GAP
   * or the player already holds it), wanted (optional, () -> bool: whether the player still
   * takes the fragment; one let go of does not count for continuity), newestDiscontinuity
   * (optional: the newest discontinuity sequence the playlist lists, see
   * `VerificationSession.checkProvenance`) }. Whether the
   * playlist says it is live does not count (see `signedAt`).
   * Resolves { ok: true } or { ok: false, reason, detail }; never throws.
   */
  async check(f) {
    const target = parseMediaUrl(f.url);
    const moves = this.moves;
    try {
      if (!target) refuse('unexpected_url', f.url);
      const { signed: verdict, back } = await this.checkSigned(target, f);
      const further = this.provenance ? await this.provenance(f, { back }) : null;
      if (further) refuse(further.reason, further.detail);
      // Only a fragment the player still takes moves the position: not one it let go of
      // while it was checked (`wanted`), nor one a reposition overtook.
      const taken = this.moves === moves && (typeof f.wanted !== 'function' || f.wanted());
      if (target.kind !== 'init' && taken) this.advance(target, verdict, f);
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
      return { signed, back: false };
    }
    this.checkFields(target, signed, f);
    if (BigInt(bytes.length) !== signed.byteLength) refuse('wrong_length', `${bytes.length} bytes, signed ${signed.byteLength}`);
    if (!equalBytes(await sha256(bytes), signed.digest)) refuse('digest_mismatch');
    this.checkSession(signed);
    const back = this.checkContinuity(target, signed, f);
    return { signed, back };
  }

  /**
   * Fetches and admits the delegation of part statement `m` (once per key and segment).
   * One the page carries is tried first; when it does not admit the key (another
   * session's, one a relay altered), the URL is fetched.
   */
  async admitDelegationFor(m, url, at) {
    const asked = `${m.stream}/${m.rendition}/${m.sequence}/${m.keyId}`;
    if (this.askedDelegations.has(asked)) return;
    if (this.askedDelegations.size >= MAX_REMEMBERED) this.askedDelegations.clear();
    this.askedDelegations.add(asked);
    const u = new URL(url, globalThis.location ? globalThis.location.href : 'http://localhost/');
    u.pathname = `/live/${m.stream}/${m.rendition}/${m.sequence}.partkey`;
    const carried = this.carriedDelegation ? this.carriedDelegation(u.href) : null;
    if (carried && carried.length) {
      try {
        await this.trust.admitDelegation(carried, at);
      } catch {
        // Not one that admits: the URL's is asked below.
      }
      if (this.trust.keys.has(m.keyId)) return;
    }
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

  /**
   * Whether `m` may come where the playback is (see the class's comment); refuses it
   * otherwise. True when it is a step back on the same rung that is allowed (hls.js
   * backtracking after a switch, or restarting a segment at an independent part): the
   * C2PA check (`provenance`) is told, since C2PA's numbers only rise.
   */
  checkContinuity(target, m, f) {
    const last = this.position;
    if (this.free || !last) return false;
    const seq = m.sequence;
    const part = m.kind === 'part' ? m.index : null;
    const sameRung = last.rendition === target.rendition;
    const refused = (key) => this.refusedAt.has(key);
    const gap = (n) => typeof f.gap === 'function' && f.gap(Number(n));
    if (this.switched && sameRung) {
      // Right after a rung switch: the segment before the switch fragment on the new rung,
      // or the switch fragment itself again (hls.js backtracking).
      if (seq === last.sequence - 1n || (seq === last.sequence && part === last.part)) return true;
    }
    if (seq === last.sequence) {
      if (!sameRung) return false;
      if (part !== null && last.part !== null) {
        // Back within the segment only to recover from a part of it refused since: a player
        // restarts at an independent part (hls.js does).
        if (part <= last.part && !refused(`${seq}~`)) {
          refuse('repeated_sequence', `part ${seq}.${part} again`);
        }
        for (let i = last.part + 1; i < part; i += 1) {
          if (!refused(`${seq}.${i}`)) refuse('skipped_sequence', `part ${seq}.${i} skipped`);
        }
        return part <= last.part;
      }
      if (part === null && last.part !== null) return false; // the whole segment after its parts
      refuse('repeated_sequence', `${seq} again`);
    }
    if (seq === last.sequence + 1n) return false;
    if (seq > last.sequence) {
      for (let n = last.sequence + 1n; n < seq; n += 1n) {
        if (!refused(`${n}~`) && !gap(n)) refuse('skipped_sequence', `${n} skipped`);
      }
      return false;
    }
    if (!sameRung && seq === last.sequence - 1n) return false;
    refuse('reordered_sequence', `${seq} after ${last.sequence}`);
    return false;
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
      this.switched = !!last && last.rendition !== target.rendition;
      this.position = { sequence: m.sequence, part, rendition: target.rendition };
    }
    this.free = false;
    this.refusedAt.clear();
  }
}

// ---- C2PA live video ------------------------------------------------------------------------
//
// The C2PA 2.3 Live Video data (§19.4, Verifiable Segment Info) sealcast puts in every CMAF
// init segment, part and segment (docs/provenance.md), checked by the player itself:
// `C2paLiveValidator`, sans-IO (bytes in, verdicts out; the crypto backend and the clock are
// handed in). Its rules and refusal codes are the Rust validator's (certs::c2pa::validate),
// and both run the same vectors (certs::c2pa::vectors; here through
// broadcast/tests/broadcast/player_verify.rs). The layouts it reads back are
// domain/src/c2pa/: bmff.rs (box walk, hash_v3), manifest.rs (the manifest store in a
// `uuid` box after `ftyp`), jumbf.rs, cose.rs, vsi.rs (the `emsg`). Every length read from
// the input is checked against what is left before anything is sliced or allocated; the
// CBOR reader nests at most 16 deep and reads at most 4096 items per input.

/** C2PA refusal codes (C2PA 2.3 §15.x and §19.7 status codes), also `reason` in tallies. */
export const C2PA = Object.freeze({
  initInvalid: 'livevideo.init.invalid',
  untrusted: 'signingCredential.untrusted',
  expired: 'signingCredential.expired',
  revoked: 'signingCredential.revoked',
  cosignature: 'io.sealcast.cosignature.mismatch',
  claimSignature: 'claimSignature.mismatch',
  algorithm: 'algorithm.unsupported',
  hashedUri: 'assertion.hashedURI.mismatch',
  bmffHash: 'assertion.bmffHash.mismatch',
  sessionKey: 'livevideo.sessionkey.invalid',
  segmentInvalid: 'livevideo.segment.invalid',
});

const C2PA_BOX_UUID = Uint8Array.from('d8fec3d61b0e483c92975828877ec481'.match(/../g), (h) => parseInt(h, 16));
/** The ISO 19566 suffix of every JUMBF content-type UUID after its four letters (jumbf.rs). */
const JUMBF_SUFFIX = Uint8Array.of(0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71);
const VSI_SCHEME = ascii('urn:c2pa:verifiable-segment-info');
/** Where the scheme URI starts in an `emsg` box (vsi.rs SCHEME_OFFSET). */
const VSI_SCHEME_OFFSET = 12;
const MAX_TOP_LEVEL_BOXES = 4096;
const MAX_CBOR_DEPTH = 16;
const MAX_CBOR_ITEMS = 4096;
const ANCHOR_TAG = ascii('sealcast/v1/provenance-anchor\0');
const COSIGNATURE_LABEL = 'io.sealcast.cosignature';
/** The tag of what a co-signature signs (domain::c2pa::manifest::cosignature_message). */
const COSIGNATURE_TAG = ascii('sealcast/v1/c2pa-cosignature\0');
/** The tag of a C2PA credential's id (certs::c2pa::credential_id, CREDENTIAL_TAG). */
const CREDENTIAL_TAG = ascii('sealcast/v1/c2pa-credential\0');
const ANCHOR_LABEL = 'io.sealcast.provenance-anchor';
const BMFF_HASH_LABEL = 'c2pa.hash.bmff.v3';
const SESSION_KEYS_LABEL = 'c2pa.session-keys';
const COSE_ALG = 1;
const COSE_KID = 4;
const COSE_X5CHAIN = 33;
const COSE_EDDSA = -8;
/** ES256: ECDSA over P-256 with SHA-256, its signature r‖s (64 bytes), not DER. */
const COSE_ES256 = -7;
const COSE_SIGN1_TAG = 18;
/** DER of the AlgorithmIdentifier's contents for Ed25519 (OID 1.3.101.112, no parameters). */
const DER_ED25519 = Uint8Array.of(0x06, 0x03, 0x2b, 0x65, 0x70);
/** DER of the AlgorithmIdentifier's contents for ecdsa-with-SHA256 (1.2.840.10045.4.3.2). */
const DER_ECDSA_SHA256 = Uint8Array.of(0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02);
/** DER of the AlgorithmIdentifier's contents of a P-256 key (id-ecPublicKey, prime256v1). */
const DER_P256_KEY = Uint8Array.of(
  0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
);
/** DER of the OID of an X.520 commonName (2.5.4.3). */
const DER_COMMON_NAME = Uint8Array.of(0x55, 0x04, 0x03);

const utf8 = (bytes) => new TextDecoder('utf-8', { fatal: true }).decode(bytes);

// -- ISO BMFF --

/** A top-level box: `{ offset, kind (4 letters), bytes (whole box), header (8 or 16) }`. */
function readBox(data, at, code) {
  const left = data.length - at;
  if (left < 8) refuse(code, 'a box header is cut off');
  let size = ((data[at] << 24) >>> 0) + (data[at + 1] << 16) + (data[at + 2] << 8) + data[at + 3];
  let header = 8;
  if (size === 0) {
    size = left;
  } else if (size === 1) {
    if (left < 16) refuse(code, "a box's largesize is cut off");
    const high = ((data[at + 8] << 24) >>> 0) + (data[at + 9] << 16) + (data[at + 10] << 8) + data[at + 11];
    const low = ((data[at + 12] << 24) >>> 0) + (data[at + 13] << 16) + (data[at + 14] << 8) + data[at + 15];
    if (high > 0x1fffff) refuse(code, "a box's size does not fit the data");
    size = high * 2 ** 32 + low;
    header = 16;
  }
  if (size < header || size > left) refuse(code, "a box's size does not fit the data");
  const kind = String.fromCharCode(data[at + 4], data[at + 5], data[at + 6], data[at + 7]);
  return { offset: at, kind, bytes: data.subarray(at, at + size), header };
}

/** `data` as a run of whole boxes (bmff::top_level), at most MAX_TOP_LEVEL_BOXES. */
function topLevel(data, code) {
  const boxes = [];
  let at = 0;
  while (at < data.length) {
    if (boxes.length === MAX_TOP_LEVEL_BOXES) refuse(code, 'more top-level boxes than allowed');
    const b = readBox(data, at, code);
    boxes.push(b);
    at += b.bytes.length;
  }
  return boxes;
}

/** The top-level boxes of `data` up to the first that does not fit (none refused). */
function leadingBoxes(data) {
  const boxes = [];
  for (let at = 0; at < data.length && boxes.length < MAX_TOP_LEVEL_BOXES; ) {
    let b;
    try {
      b = readBox(data, at, C2PA.initInvalid);
    } catch {
      break;
    }
    boxes.push(b);
    at += b.bytes.length;
  }
  return boxes;
}

const payloadOf = (b) => b.bytes.subarray(b.header);

function isC2paBox(b) {
  return b.kind === 'uuid' && b.bytes.length >= 24 && equalBytes(b.bytes.subarray(8, 24), C2PA_BOX_UUID);
}

function isVsiEmsg(b) {
  const end = VSI_SCHEME_OFFSET + VSI_SCHEME.length;
  return b.kind === 'emsg' && b.bytes.length >= end && equalBytes(b.bytes.subarray(VSI_SCHEME_OFFSET, end), VSI_SCHEME);
}

function initExcluded(b) {
  return b.kind === 'ftyp' || b.kind === 'free' || b.kind === 'skip' || b.kind === 'mfra' || isC2paBox(b);
}

/** The v2/v3 BMFF hash (bmff::hash_v3, shift 0): each kept box after its offset (u64). */
function hashV3(boxes, excluded) {
  const kept = boxes.filter((b) => !excluded(b));
  let length = 0;
  for (const b of kept) length += 8 + b.bytes.length;
  const input = new Uint8Array(length);
  const view = new DataView(input.buffer);
  let at = 0;
  for (const b of kept) {
    view.setUint32(at, Math.floor(b.offset / 2 ** 32));
    view.setUint32(at + 4, b.offset >>> 0);
    input.set(b.bytes, at + 8);
    at += 8 + b.bytes.length;
  }
  return sha256(input);
}

/** The `mfhd` sequence number of the first top-level `moof` (bmff::first_fragment_sequence). */
function firstFragmentSequence(boxes, code) {
  const moof = boxes.find((b) => b.kind === 'moof');
  if (!moof) refuse(code, 'no moof');
  const mfhd = topLevel(payloadOf(moof), code).find((b) => b.kind === 'mfhd');
  if (!mfhd) refuse(code, 'a moof without mfhd');
  const p = payloadOf(mfhd);
  if (p.length < 8) refuse(code, 'an mfhd is cut off');
  return ((p[4] << 24) >>> 0) + (p[5] << 16) + (p[6] << 8) + p[7];
}

// -- CBOR --

/** A CBOR map: its pairs in input order; `get` finds the first pair with the key. */
class CborMap {
  constructor(pairs) {
    this.pairs = pairs;
  }

  get(key) {
    for (const [k, v] of this.pairs) if (k === key) return v;
    return undefined;
  }
}

/** A tagged CBOR item. */
class CborTag {
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}

/**
 * Reads exactly one CBOR item (RFC 8949) from `bytes`, refusing with `code`: integers as
 * Numbers (BigInts beyond 2^53), byte strings as views, text as strings, maps as CborMap,
 * tags as CborTag, false/true/null. Indefinite lengths, floats and other simple values are
 * refused (nothing C2PA signs here uses them), as are counts past the end of the input.
 */
function readCbor(bytes, code, what) {
  let at = 0;
  let items = 0;
  const fail = (detail) => refuse(code, `${what}: ${detail}`);
  const take = (n) => {
    if (n > bytes.length - at) fail('a length past the end');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const head = () => {
    const first = take(1)[0];
    const major = first >> 5;
    const info = first & 0x1f;
    let n;
    if (info < 24) n = info;
    else if (info === 24) n = take(1)[0];
    else if (info === 25) n = (take(1)[0] << 8) + take(1)[0];
    else if (info === 26) {
      const b = take(4);
      n = ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
    } else if (info === 27) {
      let big = 0n;
      for (const b of take(8)) big = (big << 8n) | BigInt(b);
      n = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    } else {
      fail('an indefinite length or reserved head');
    }
    return { major, n };
  };
  // A count of items that follow, each at least `per` bytes.
  const count = (n, per) => {
    if (typeof n !== 'number' || n * per > bytes.length - at) fail('a count past the end');
    return n;
  };
  const item = (depth) => {
    if (depth > MAX_CBOR_DEPTH) fail('nested too deep');
    items += 1;
    if (items > MAX_CBOR_ITEMS) fail('too many items');
    const { major, n } = head();
    switch (major) {
      case 0:
        return n;
      case 1:
        return typeof n === 'number' && n < Number.MAX_SAFE_INTEGER ? -1 - n : -1n - BigInt(n);
      case 2:
        return take(count(n, 1));
      case 3:
        try {
          return utf8(take(count(n, 1)));
        } catch (error) {
          if (error instanceof Refusal) throw error;
          return fail('a text string that is not UTF-8');
        }
      case 4: {
        const out = [];
        for (let i = count(n, 1); i > 0; i -= 1) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        const pairs = [];
        for (let i = count(n, 2); i > 0; i -= 1) {
          const k = item(depth + 1);
          pairs.push([k, item(depth + 1)]);
        }
        return new CborMap(pairs);
      }
      case 6:
        return new CborTag(n, item(depth + 1));
      default:
        if (n === 20) return false;
        if (n === 21) return true;
        if (n === 22) return null;
        return fail('a float or an unknown simple value');
    }
  };
  const value = item(0);
  if (at !== bytes.length) fail('bytes after the item');
  return value;
}

/** A CBOR byte string of `payload`, its head in the shortest form (as cbor.rs writes). */
function cborBytes(payload) {
  const n = payload.length;
  let head;
  if (n < 24) head = [0x40 | n];
  else if (n < 0x100) head = [0x58, n];
  else if (n < 0x10000) head = [0x59, n >> 8, n & 0xff];
  else head = [0x5a, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(head.length + n);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** COSE's Sig_structure for a COSE_Sign1 (cose.rs to_be_signed). */
function coseToBeSigned(protectedBytes, payload) {
  // [ "Signature1" (text), protected (bstr), external_aad (empty bstr), payload (bstr) ]
  const context = ascii('Signature1');
  const parts = [Uint8Array.of(0x84, 0x60 | context.length), context, cborBytes(protectedBytes), Uint8Array.of(0x40), cborBytes(payload)];
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const isBytes = (v) => v instanceof Uint8Array;
const isUint = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n);

/**
 * A COSE_Sign1 (tag 18, or untagged where `tagged` is false): `{ protectedBytes,
 * protectedMap, unprotected, payload (bytes or null), signature }`, or a refusal `code`.
 */
function coseSign1(value, code, what, tagged = true) {
  let v = value;
  if (v instanceof CborTag) {
    if (v.tag !== COSE_SIGN1_TAG) refuse(code, `${what}: not a COSE_Sign1`);
    v = v.value;
  } else if (tagged) {
    refuse(code, `${what}: not a COSE_Sign1_Tagged`);
  }
  if (!Array.isArray(v) || v.length !== 4) refuse(code, `${what}: not a COSE_Sign1`);
  const [protectedBytes, unprotected, payload, signature] = v;
  if (!isBytes(protectedBytes) || !(unprotected instanceof CborMap) || !(payload === null || isBytes(payload)) || !isBytes(signature)) {
    refuse(code, `${what}: not a COSE_Sign1`);
  }
  const protectedMap = protectedBytes.length === 0 ? new CborMap([]) : readCbor(protectedBytes, code, `${what}'s protected header`);
  if (!(protectedMap instanceof CborMap)) refuse(code, `${what}: a protected header that is not a map`);
  return { protectedBytes, protectedMap, unprotected, payload, signature };
}

// -- JUMBF --

function isC2paType(type, letters) {
  return type.length === 16 && String.fromCharCode(...type.subarray(0, 4)) === letters && equalBytes(type.subarray(4), JUMBF_SUFFIX);
}

/** A `jumb` box's payload: its `jumd` description (type, label) and its children's bytes. */
function superbox(payload, code) {
  if (payload.length === 0) refuse(code, 'an empty JUMBF superbox');
  const jumd = readBox(payload, 0, code);
  if (jumd.kind !== 'jumd') refuse(code, 'a JUMBF superbox without its description');
  const d = payloadOf(jumd);
  if (d.length < 17) refuse(code, 'a JUMBF description is cut off');
  let label = '';
  if (d[16] & 0x02) {
    const rest = d.subarray(17);
    const end = rest.indexOf(0);
    if (end < 0) refuse(code, 'a JUMBF label without its NUL');
    try {
      label = utf8(rest.subarray(0, end));
    } catch {
      refuse(code, 'a JUMBF label that is not UTF-8');
    }
  }
  return { type: d.subarray(0, 16), label, children: payload.subarray(jumd.bytes.length) };
}

/** The superboxes among `children` of C2PA type `letters`, each with its payload. */
function childrenOf(children, letters, code) {
  const out = [];
  for (const b of topLevel(children, code)) {
    if (b.kind !== 'jumb') continue;
    const s = superbox(payloadOf(b), code);
    if (isC2paType(s.type, letters)) out.push({ ...s, payload: payloadOf(b) });
  }
  return out;
}

function onlyChild(children, letters, code) {
  const found = childrenOf(children, letters, code);
  if (found.length === 0) refuse(code, `a manifest without its ${letters}`);
  if (found.length > 1) refuse(code, `a manifest with ${letters} twice`);
  return found[0];
}

/** The payload of the first `cbor` content box among `children` (empty when none). */
function cborContent(children, code) {
  const b = topLevel(children, code).find((x) => x.kind === 'cbor');
  return b ? payloadOf(b) : new Uint8Array(0);
}

/**
 * The active (last) manifest of the store in a C2PA `uuid` box (manifest.rs's layout):
 * `{ label, claim (CBOR bytes), signature (CBOR bytes), assertions: [{ label, payload,
 * cbor }] }`. Refuses `livevideo.init.invalid`.
 */
function readManifest(box) {
  const code = C2PA.initInvalid;
  const p = payloadOf(box);
  // Extended type (16), version and flags (4), purpose (NUL-terminated), for "manifest" an
  // 8-byte offset to auxiliary data, then the store.
  if (p.length < 20) refuse(code, 'a C2PA box is cut off');
  const rest = p.subarray(20);
  const end = rest.indexOf(0);
  if (end < 0) refuse(code, 'a C2PA box purpose without its NUL');
  if (String.fromCharCode(...rest.subarray(0, Math.min(end, 16))) !== 'manifest' || end !== 8) {
    refuse(code, 'a C2PA box whose purpose is not manifest');
  }
  if (rest.length < end + 1 + 8) refuse(code, 'a C2PA box is cut off');
  const stored = rest.subarray(end + 1 + 8);
  if (stored.length === 0) refuse(code, 'a C2PA box without a store');
  const storeBox = readBox(stored, 0, code);
  if (storeBox.kind !== 'jumb') refuse(code, 'a C2PA box without a store');
  const store = superbox(payloadOf(storeBox), code);
  if (!isC2paType(store.type, 'c2pa')) refuse(code, 'a C2PA store of another type');
  const manifests = childrenOf(store.children, 'c2ma', code);
  if (manifests.length === 0) refuse(code, 'a C2PA store without a manifest');
  const manifest = manifests[manifests.length - 1];
  const assertionStore = onlyChild(manifest.children, 'c2as', code);
  const claim = onlyChild(manifest.children, 'c2cl', code);
  const signature = onlyChild(manifest.children, 'c2cs', code);
  const assertions = [];
  for (const b of topLevel(assertionStore.children, code)) {
    if (b.kind !== 'jumb') continue;
    const s = superbox(payloadOf(b), code);
    assertions.push({ label: s.label, payload: payloadOf(b), cbor: cborContent(s.children, code) });
  }
  return {
    label: manifest.label,
    claim: cborContent(claim.children, code),
    signature: cborContent(signature.children, code),
    assertions,
    assertion: (label) => assertions.find((a) => a.label === label),
  };
}

// -- the provenance anchor --

/**
 * A provenance anchor (`sealcast/v1/provenance-anchor\0`, root-signed): version 1, the
 * root's algorithm, issuer (the root's key id), not before and not after (unix seconds),
 * SHA-256 of the provenance CA's certificate (DER), then the root's signature over all of
 * it. Refuses `signingCredential.untrusted`.
 */
export function decodeProvenanceAnchor(bytes) {
  const r = new Reader(asBytes(bytes), C2PA.untrusted, 'provenance anchor');
  r.tag(ANCHOR_TAG);
  r.version();
  const algorithm = r.algorithm();
  const anchor = { algorithm, issuer: toHex(r.take(16)) };
  anchor.notBefore = r.u64();
  anchor.notAfter = r.u64();
  anchor.caDigest = r.take(32);
  return Object.assign(anchor, r.signatureOf(algorithm));
}

// -- X.509 (the little of it a claim signer's chain needs) --

/** One DER element at `at`: `{ tag, start, content (view), end }`. */
function derElement(bytes, at, code) {
  if (bytes.length - at < 2) refuse(code, 'a certificate is cut off');
  const tag = bytes[at];
  let length = bytes[at + 1];
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || bytes.length - at < 2 + n) refuse(code, 'a certificate length is not DER');
    length = 0;
    for (let i = 0; i < n; i += 1) length = length * 256 + bytes[at + 2 + i];
    header = 2 + n;
  }
  if (length > bytes.length - at - header) refuse(code, 'a certificate element past its end');
  return { tag, start: at, content: bytes.subarray(at + header, at + header + length), end: at + header + length };
}

/** The elements of a constructed element's content, in order. */
function derChildren(content, code) {
  const out = [];
  let at = 0;
  while (at < content.length) {
    if (out.length >= 64) refuse(code, 'a certificate element with too many parts');
    const e = derElement(content, at, code);
    out.push(e);
    at = e.end;
  }
  return out;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as unix seconds. */
function derTime(e, code) {
  const text = String.fromCharCode(...e.content);
  let m;
  let year;
  if (e.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    year = Number(m[1]);
    year += year < 50 ? 2000 : 1900;
  } else if (e.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    year = Number(m[1]);
  } else {
    refuse(code, 'a certificate validity time that is not UTCTime or GeneralizedTime');
  }
  const [, , mo, d, h, mi, s] = m.map(Number);
  return Math.floor(Date.UTC(year, mo - 1, d, h, mi, s) / 1000);
}

/** The first commonName of an X.501 Name's content ('' if none). */
function commonName(name, code) {
  for (const set of derChildren(name.content, code)) {
    if (set.tag !== 0x31) continue;
    for (const atv of derChildren(set.content, code)) {
      const [oid, value] = atv.tag === 0x30 ? derChildren(atv.content, code) : [];
      if (!oid || !value || oid.tag !== 0x06 || !equalBytes(oid.content, DER_COMMON_NAME)) continue;
      try {
        // UTF8String; PrintableString and IA5String are ASCII, so UTF-8 reads them too.
        return value.tag === 0x0c || value.tag === 0x13 || value.tag === 0x16 ? utf8(value.content) : '';
      } catch {
        return '';
      }
    }
  }
  return '';
}

/**
 * An ECDSA signature's DER (`SEQUENCE { INTEGER r, INTEGER s }`, as an X.509 certificate
 * carries it) as the r‖s WebCrypto verifies (64 bytes for P-256). Strict DER: short
 * lengths, no trailing bytes, each integer positive, minimal and at most 32 bytes.
 */
function ecdsaRawSignature(der, code) {
  const bad = () => refuse(code, 'a certificate signature that is not an ECDSA P-256 signature in DER');
  if (der.length < 8 || der.length > 72 || der[0] !== 0x30 || der[1] !== der.length - 2) bad();
  const out = new Uint8Array(64);
  let at = 2;
  for (let i = 0; i < 2; i += 1) {
    if (der.length - at < 2 || der[at] !== 0x02) bad();
    const n = der[at + 1];
    at += 2;
    if (n < 1 || n > 33 || n > der.length - at) bad();
    let v = der.subarray(at, at + n);
    at += n;
    if (v[0] & 0x80) bad(); // negative
    if (n > 1 && v[0] === 0 && !(v[1] & 0x80)) bad(); // not minimal
    if (n > 1 && v[0] === 0) v = v.subarray(1); // the sign byte
    if (v.length > 32 || v.every((b) => b === 0)) bad();
    out.set(v, i * 32 + 32 - v.length);
  }
  if (at !== der.length) bad();
  return out;
}

/**
 * An X.509 certificate (DER) with an Ed25519 or P-256 key, signed with Ed25519 or
 * ecdsa-with-SHA256: `{ tbs (the signed bytes), signedWith ('ed25519' | 'es256'), signature
 * (Ed25519's, or ECDSA's as r‖s), keyType ('ed25519' | 'p256'), publicKey (32 bytes, or the
 * uncompressed P-256 point), notBefore, notAfter (unix seconds), subject (its commonName)
 * }`. Anything else is refused `signingCredential.untrusted`.
 */
function parseCertificate(der) {
  const code = C2PA.untrusted;
  const cert = derElement(der, 0, code);
  if (cert.tag !== 0x30 || cert.end !== der.length) refuse(code, 'not a certificate');
  const [tbs, algorithm, signature, ...extra] = derChildren(cert.content, code);
  if (!tbs || tbs.tag !== 0x30 || extra.length) refuse(code, 'not a certificate');
  if (!algorithm || algorithm.tag !== 0x30) refuse(code, 'a certificate without its signature algorithm');
  if (!signature || signature.tag !== 0x03 || signature.content.length < 2 || signature.content[0] !== 0) {
    refuse(code, 'a certificate signature that is not a whole-byte BIT STRING');
  }
  let signedWith;
  let raw;
  if (equalBytes(algorithm.content, DER_ED25519)) {
    if (signature.content.length !== 65) refuse(code, 'a certificate signature that is not Ed25519');
    signedWith = 'ed25519';
    raw = signature.content.subarray(1);
  } else if (equalBytes(algorithm.content, DER_ECDSA_SHA256)) {
    signedWith = 'es256';
    raw = ecdsaRawSignature(signature.content.subarray(1), code);
  } else {
    refuse(code, 'a certificate signed with neither Ed25519 nor ECDSA with SHA-256');
  }
  const fields = derChildren(tbs.content, code);
  let i = fields[0] && fields[0].tag === 0xa0 ? 1 : 0; // [0] version
  i += 2; // serial number, signature algorithm
  const [issuer, validity, subject, spki] = fields.slice(i + 0, i + 4);
  if (!issuer || !validity || !subject || !spki || validity.tag !== 0x30 || subject.tag !== 0x30 || spki.tag !== 0x30) {
    refuse(code, 'a certificate that is not X.509');
  }
  const [notBefore, notAfter] = derChildren(validity.content, code);
  if (!notBefore || !notAfter) refuse(code, 'a certificate without its validity');
  const [keyAlgorithm, key] = derChildren(spki.content, code);
  if (!keyAlgorithm || keyAlgorithm.tag !== 0x30 || !key || key.tag !== 0x03 || key.content[0] !== 0) {
    refuse(code, 'a certificate without its key');
  }
  let keyType;
  if (equalBytes(keyAlgorithm.content, DER_ED25519) && key.content.length === 33) keyType = 'ed25519';
  else if (equalBytes(keyAlgorithm.content, DER_P256_KEY) && key.content.length === 66 && key.content[1] === 4) keyType = 'p256';
  else refuse(code, 'a certificate key that is neither Ed25519 nor an uncompressed P-256 point');
  return {
    tbs: cert.content.subarray(tbs.start, tbs.end),
    signedWith,
    signature: raw,
    keyType,
    publicKey: key.content.subarray(1),
    notBefore: derTime(notBefore, code),
    notAfter: derTime(notAfter, code),
    subject: commonName(subject, code),
  };
}

/** The algorithm a key of `keyType` verifies: what a signature by it must say it is. */
const SIGNED_WITH = Object.freeze({ ed25519: 'ed25519', p256: 'es256' });

/** ECDSA P-256 with SHA-256 through WebCrypto (every browser has it): `signature` is r‖s. */
async function verifyP256(publicKey, message, signature) {
  if (!globalThis.crypto || !crypto.subtle || signature.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, message);
  } catch {
    return false;
  }
}

// -- the validator --

/**
 * A C2paLiveValidator's `cosigned` over a Trust: the co-signing key must be one the root
 * certified, neither revoked nor expired at the manifest's creation time, and its
 * signature must verify; true, or why not.
 */
export function cosignatureChecker(trust) {
  return async ({ keyId, algorithm, at, message, signature }) => {
    let key;
    try {
      key = trust.resolveKey(keyId, algorithm, at);
    } catch (error) {
      if (error instanceof Refusal) return error.message;
      throw error;
    }
    if (key.via !== 'certificate') return 'a co-signature by a key the root did not certify';
    return (await trust.backend.verify(algorithm, key.publicKey, message, signature)) || 'the co-signature does not verify';
  };
}

/** The id under which the root revokes a C2PA credential (its certificate, DER), hex. */
async function credentialId(der) {
  const input = new Uint8Array(CREDENTIAL_TAG.length + der.length);
  input.set(CREDENTIAL_TAG);
  input.set(der, CREDENTIAL_TAG.length);
  return toHex((await sha256(input)).subarray(0, 16));
}

/** RFC 3339 (`createdAt`) as unix seconds, or null. */
function rfc3339(text) {
  const m = typeof text === 'string' && /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.slice(0, 7).map(Number);
  let seconds = Math.floor(Date.UTC(y, mo - 1, d, h, mi, s) / 1000);
  if (m[8]) seconds -= (m[8] === '+' ? 1 : -1) * (Number(m[9]) * 3600 + Number(m[10]) * 60);
  return BigInt(seconds);
}

const big = (v) => (typeof v === 'bigint' ? v : BigInt(v));

/**
 * The C2PA live-video checks of one playback, per rendition (docs/provenance.md, "What
 * the player checks"): an init segment's manifest (its store, the provenance anchor the
 * pinned root signed, the claim signer's chain to the provenance CA, the claim signature,
 * the assertions' hashes, the init's BMFF hash, the session keys' signer bindings), then
 * every segment's and part's VSI against the session keys the init verified. `check`
 * resolves `{ ok: true, status: 'verified', signer? }` (signer: on an init, the claim
 * signer's commonName), `{ ok: true, status: 'unsigned' }` (an init without C2PA data, and
 * the fragments of its rendition: no provenance, no refusal) or `{ ok: false, code,
 * reason (= code), detail }`; it never throws.
 */
export class C2paLiveValidator {
  /**
   * `root`: Trust.root's `{ algorithm, publicKey, keyId }`; `backend`: chooseCrypto's;
   * `revokedAt` (optional): when the root revoked an id (hex), as unix seconds (BigInt), or
   * undefined: a verified manifest's claim signer and CA are looked up under their
   * credential ids at its init segment and at every fragment (`signingCredential.revoked`
   * from the revocation's time on; the Rust twin's `check_revocation`); `cosigned`
   * (optional, see `cosignatureChecker`): async, whether a manifest's co-signature
   * (`io.sealcast.cosignature`: an ingest key the root certified, over every assertion
   * before it) verifies, true or why not (`io.sealcast.cosignature.mismatch`);
   * `anchors` (optional): the provenance anchors the root signed apart for the CAs of other
   * C2PA signers (byte arrays, as `/trust/v1/provenance-anchors` serves them; see
   * `provenanceAnchorsOf`), which a manifest without an anchor of its own may chain to;
   * each is checked against the root, and its validity, at every init segment.
   */
  constructor({ root, backend, now = () => Date.now(), revokedAt = null, cosigned = null, anchors = () => [] }) {
    this.root = root;
    this.anchors = anchors;
    this.backend = backend;
    this.now = now;
    this.revokedAt = revokedAt;
    this.cosigned = cosigned;
    // rendition -> { state: 'unsigned' | 'verified' | 'refused', manifest, last: { segment,
    // part } (the last verified sequence number of each kind), discontinuity }
    this.renditions = new Map();
  }

  /** The player moved on purpose: sequence numbers start over on every rendition. */
  reposition() {
    for (const r of this.renditions.values()) r.last = { segment: null, part: null };
  }

  /** The player came back to `rendition` from another: its sequence numbers start over. */
  startOver(rendition) {
    const r = this.renditions.get(rendition);
    if (r) r.last = { segment: null, part: null };
  }

  /**
   * Checks one fragment: `{ rendition (any string naming it, e.g. "stream/rendition"),
   * kind ('init' | 'segment' | 'part'), bytes, discontinuity (optional: a change starts
   * the sequence numbers over) }`.
   */
  async check({ rendition, kind, bytes, discontinuity = null }) {
    const init = kind === 'init';
    try {
      const data = asBytes(bytes);
      return init ? await this.checkInit(rendition, data) : await this.checkFragment(rendition, kind, data, discontinuity);
    } catch (thrown) {
      const error =
        thrown instanceof Refusal ? thrown : new Refusal(init ? C2PA.initInvalid : C2PA.segmentInvalid, String((thrown && thrown.message) || thrown));
      if (init) this.remember(rendition, { state: 'refused', manifest: null });
      return { ok: false, code: error.reason, reason: error.reason, detail: error.detail, unknownKey: error.unknownKey === true };
    }
  }

  /** Whether an init segment of `rendition` was checked (whatever its verdict). */
  knows(rendition) {
    return this.renditions.has(rendition);
  }

  /** The verdict on `rendition`'s init segment; its fragments' numbers start over. */
  remember(rendition, entry) {
    const held = this.renditions.get(rendition);
    if (!held && this.renditions.size >= MAX_REMEMBERED) this.renditions.clear();
    this.renditions.set(rendition, {
      ...entry,
      last: { segment: null, part: null },
      discontinuity: held ? held.discontinuity : null,
    });
  }

  async checkInit(rendition, bytes) {
    // Unsigned unless a C2PA box is among the boxes that parse (as the Rust twin): bytes
    // that are not BMFF carry no manifest (their integrity is our statements' business).
    if (!leadingBoxes(bytes).some(isC2paBox)) {
      this.remember(rendition, { state: 'unsigned', manifest: null });
      return { ok: true, status: 'unsigned' };
    }
    // 1. The manifest store.
    const boxes = topLevel(bytes, C2PA.initInvalid);
    const box = boxes.find(isC2paBox);
    if (boxes.some((b) => b.kind === 'mdat')) refuse(C2PA.initInvalid, 'an init segment with media (mdat)');
    const m = readManifest(box);

    // 2. The provenance anchor, signed by the pinned root: the manifest's own, which it is
    // then held to, or else one the root signed apart for another signer's CA.
    const own = Boolean(m.assertion(ANCHOR_LABEL));
    const anchors = own ? [await this.anchorOf(m)] : await this.deliveredAnchors();
    if (anchors.length === 0) refuse(C2PA.untrusted, `no ${ANCHOR_LABEL} assertion`);

    // 3. The claim signer's chain to the provenance CA the anchor names (a claim signature
    // that is no COSE_Sign1_Tagged is claimSignature.mismatch, one of another alg than
    // EdDSA or ES256 algorithm.unsupported, as in the Rust twin).
    let sign1 = null;
    try {
      sign1 = coseSign1(readCbor(m.signature, C2PA.claimSignature, 'the claim signature'), C2PA.claimSignature, 'the claim signature');
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      refuse(C2PA.claimSignature, 'the claim signature is not a COSE_Sign1');
    }
    const alg = sign1.protectedMap.get(COSE_ALG);
    if (alg !== COSE_EDDSA && alg !== COSE_ES256) {
      refuse(C2PA.algorithm, `a claim signature of alg ${String(alg)}: only EdDSA (-8) and ES256 (-7) are supported`);
    }
    const signer = await this.claimSigner(sign1, anchors);

    // 4. The claim signature, over the claim's bytes (detached, or attached as they are), in
    // the alg its signer's key fits.
    if (alg !== (signer.keyType === 'p256' ? COSE_ES256 : COSE_EDDSA)) {
      refuse(C2PA.claimSignature, "the claim signature's alg is not its signer's key's");
    }
    const payload = sign1.payload === null ? m.claim : sign1.payload;
    const tbs = coseToBeSigned(sign1.protectedBytes, payload);
    const claimed =
      signer.keyType === 'p256'
        ? await verifyP256(signer.publicKey, tbs, sign1.signature)
        : await this.backend.verify(ED25519, signer.publicKey, tbs, sign1.signature);
    if (!claimed) refuse(C2PA.claimSignature, 'the claim signature does not verify');

    // 5. The assertions the claim names, by hash; it must name the ones checked here.
    await this.hashedAssertions(m, own);

    // 6. The init segment's BMFF hash.
    const hashAssertion = m.assertion(BMFF_HASH_LABEL);
    if (!hashAssertion) refuse(C2PA.bmffHash, 'no BMFF hash');
    const hashMap = readCbor(hashAssertion.cbor, C2PA.bmffHash, 'the BMFF hash');
    const wanted = hashMap instanceof CborMap ? hashMap.get('hash') : undefined;
    if (!isBytes(wanted) || !equalBytes(await hashV3(boxes, initExcluded), wanted)) {
      refuse(C2PA.bmffHash, 'the init segment is not the one hashed');
    }

    // 7. The session keys, each bound to the claim signer's certificate.
    const keys = await this.sessionKeys(m, signer.der);

    await this.checkCosignature(m, keys);
    const credentials = [await credentialId(signer.der), await credentialId(signer.caDer)];
    this.checkRevocation(credentials);
    this.remember(rendition, { state: 'verified', manifest: { label: m.label, signer: signer.subject, keys, credentials } });
    return { ok: true, status: 'verified', signer: signer.subject };
  }

  /**
   * The manifest's co-signature, when it has one and the caller checks them: its
   * algorithm, key id and signature, over `cosignature_message` (the tag, the manifest's
   * label, then each assertion before it: its label and the SHA-256 of its superbox
   * payload; lengths as big-endian u16), at the manifest's creation time (its first
   * session key's `createdAt`).
   */
  async checkCosignature(m, keys) {
    if (!this.cosigned) return;
    const at = m.assertions.findIndex((a) => a.label === COSIGNATURE_LABEL);
    if (at < 0) return;
    const code = C2PA.cosignature;
    const value = readCbor(m.assertions[at].cbor, code, 'the co-signature');
    const field = (name) => (value instanceof CborMap ? value.get(name) : undefined);
    const algorithm = field('alg');
    const keyId = field('keyId');
    const signature = field('signature');
    if (typeof algorithm !== 'number' || !ALGORITHMS[algorithm]) refuse(code, 'a co-signature of an unknown algorithm');
    if (!isBytes(keyId) || keyId.length !== 16) refuse(code, 'a co-signature without its key id');
    if (!isBytes(signature)) refuse(code, 'a co-signature without its signature');
    const pieces = [COSIGNATURE_TAG];
    const put = (bytes) => pieces.push(Uint8Array.of((bytes.length >> 8) & 0xff, bytes.length & 0xff), bytes);
    put(ascii(m.label));
    pieces.push(Uint8Array.of((at >> 8) & 0xff, at & 0xff));
    for (const a of m.assertions.slice(0, at)) {
      put(ascii(a.label));
      pieces.push(await sha256(a.payload));
    }
    let length = 0;
    for (const piece of pieces) length += piece.length;
    const message = new Uint8Array(length);
    let offset = 0;
    for (const piece of pieces) {
      message.set(piece, offset);
      offset += piece.length;
    }
    let signedAt = null;
    for (const k of keys.values()) if (signedAt === null || k.createdAt < signedAt) signedAt = k.createdAt;
    const verdict = await this.cosigned({ keyId: toHex(keyId), algorithm, at: signedAt ?? 0n, message, signature });
    if (verdict !== true) refuse(code, typeof verdict === 'string' ? verdict : 'the co-signature does not verify');
  }

  /** Refuses `signingCredential.revoked` once the root revoked one of `credentials`. */
  checkRevocation(credentials) {
    if (!this.revokedAt) return;
    const now = BigInt(Math.floor(this.now() / 1000));
    for (const id of credentials) {
      const at = this.revokedAt(id);
      if (at !== undefined && at !== null && big(at) <= now) refuse(C2PA.revoked, `the credential ${id} was revoked at ${at}`);
    }
  }

  async anchorOf(m) {
    const code = C2PA.untrusted;
    const found = m.assertion(ANCHOR_LABEL);
    if (!found) refuse(code, `no ${ANCHOR_LABEL} assertion`);
    const value = readCbor(found.cbor, code, 'the provenance anchor assertion');
    const bytes = value instanceof CborMap ? value.get('anchor') : undefined;
    if (!isBytes(bytes)) refuse(code, 'the provenance anchor assertion is not {"anchor": bytes}');
    return this.verifiedAnchor(bytes);
  }

  /** The delivered anchors that the root signed and that hold now; others are passed over. */
  async deliveredAnchors() {
    const out = [];
    for (const bytes of this.anchors().slice(0, MAX_DELIVERED_ANCHORS)) {
      try {
        out.push(await this.verifiedAnchor(bytes));
      } catch (error) {
        if (!(error instanceof Refusal)) throw error;
      }
    }
    return out;
  }

  /** A provenance anchor's bytes, decoded and checked against the pinned root, valid now. */
  async verifiedAnchor(bytes) {
    const code = C2PA.untrusted;
    const anchor = decodeProvenanceAnchor(bytes);
    if (anchor.algorithm !== this.root.algorithm || anchor.issuer !== this.root.keyId) {
      refuse(code, 'a provenance anchor not issued by the pinned root');
    }
    if (!(await this.backend.verify(this.root.algorithm, this.root.publicKey, anchor.body, anchor.signature))) {
      refuse(code, "the provenance anchor's signature does not verify");
    }
    const now = BigInt(Math.floor(this.now() / 1000));
    if (now < anchor.notBefore || now > anchor.notAfter) {
      refuse(code, `a provenance anchor valid ${anchor.notBefore}..${anchor.notAfter}, now ${now}`);
    }
    return anchor;
  }

  /** The claim signer: `{ der, caDer, keyType, publicKey, subject }`, chained to an anchored CA. */
  async claimSigner(sign1, anchors) {
    const code = C2PA.untrusted;
    const x5chain = sign1.protectedMap.get(COSE_X5CHAIN);
    const chain = isBytes(x5chain) ? [x5chain] : x5chain;
    if (!Array.isArray(chain) || chain.length === 0 || !chain.every(isBytes)) refuse(code, 'no x5chain in the protected header');
    let caDer = null;
    for (const der of chain.slice(1)) {
      const digest = await sha256(der);
      if (anchors.some((a) => equalBytes(digest, a.caDigest))) {
        caDer = der;
        break;
      }
    }
    if (!caDer) refuse(code, "the chain does not hold the anchor's provenance CA");
    const signer = parseCertificate(chain[0]);
    const ca = parseCertificate(caDer);
    // The link in the CA key's own algorithm: Ed25519, or ECDSA P-256 with SHA-256.
    if (signer.signedWith !== SIGNED_WITH[ca.keyType]) {
      refuse(code, "the claim signer's certificate is signed in an algorithm the CA's key does not sign");
    }
    const linked =
      ca.keyType === 'p256'
        ? await verifyP256(ca.publicKey, signer.tbs, signer.signature)
        : await this.backend.verify(ED25519, ca.publicKey, signer.tbs, signer.signature);
    if (!linked) refuse(code, "the claim signer's certificate is not signed by the provenance CA");
    const now = Math.floor(this.now() / 1000);
    for (const [what, c] of [['claim signer', signer], ['provenance CA', ca]]) {
      if (now < c.notBefore || now > c.notAfter) {
        refuse(C2PA.expired, `the ${what}'s certificate is valid ${c.notBefore}..${c.notAfter}, now ${now}`);
      }
    }
    return { der: chain[0], caDer, keyType: signer.keyType, publicKey: signer.publicKey, subject: signer.subject };
  }

  /**
   * Every assertion the claim lists (`created_assertions`, and `gathered_assertions`,
   * where c2pa-rs lists what a signer adds itself; the label is the URL's last segment) is
   * in the store with the hash the claim gives it, and the claim lists the BMFF hash, the
   * session keys and (when the manifest's trust rests on it: `own`) the provenance anchor.
   */
  async hashedAssertions(m, own) {
    const code = C2PA.hashedUri;
    const claim = readCbor(m.claim, code, 'the claim');
    const list = claim instanceof CborMap ? claim.get('created_assertions') : undefined;
    if (!Array.isArray(list)) refuse(code, 'the claim lists no assertions');
    const gathered = claim.get('gathered_assertions');
    const seen = new Set();
    for (const entry of Array.isArray(gathered) ? list.concat(gathered) : list) {
      const url = entry instanceof CborMap ? entry.get('url') : undefined;
      const hash = entry instanceof CborMap ? entry.get('hash') : undefined;
      const label = typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : '';
      const found = m.assertion(label);
      if (!found) refuse(code, `${label}: listed but not in the store`);
      if (!isBytes(hash) || !equalBytes(await sha256(found.payload), hash)) refuse(code, `${label}: its hash does not match`);
      seen.add(label);
    }
    for (const needed of own ? [BMFF_HASH_LABEL, SESSION_KEYS_LABEL, ANCHOR_LABEL] : [BMFF_HASH_LABEL, SESSION_KEYS_LABEL]) {
      if (!seen.has(needed)) refuse(code, `${needed}: not listed in the claim`);
    }
  }

  /** The session keys, kid hex -> { publicKey, minSequence, createdAt, validity } (BigInts). */
  async sessionKeys(m, signerDer) {
    const code = C2PA.sessionKey;
    const found = m.assertion(SESSION_KEYS_LABEL);
    if (!found) refuse(code, 'no session keys');
    const value = readCbor(found.cbor, code, 'the session keys');
    const list = value instanceof CborMap ? value.get('keys') : undefined;
    if (!Array.isArray(list) || list.length === 0) refuse(code, 'no session keys');
    const binding = cborBytes(signerDer);
    const keys = new Map();
    for (const entry of list) {
      if (!(entry instanceof CborMap)) refuse(code, 'a session key that is not a map');
      const key = entry.get('key');
      const createdAt = entry.get('createdAt');
      const k = {
        minSequence: entry.get('minSequenceNumber'),
        createdAt: rfc3339(createdAt instanceof CborTag && createdAt.tag === 0 ? createdAt.value : createdAt),
        validity: entry.get('validityPeriod'),
      };
      if (!(key instanceof CborMap)) refuse(code, 'a session key without its key');
      const kid = key.get(2);
      const publicKey = key.get(-2);
      if (!isBytes(kid)) refuse(code, 'a session key without its kid');
      if (!isBytes(publicKey) || publicKey.length !== 32) refuse(code, 'a session key that is not Ed25519');
      if (key.get(3) !== COSE_EDDSA) refuse(code, 'a session key that is not EdDSA');
      const sign1 = coseSign1(entry.get('signerBinding'), code, 'a signer binding');
      if (sign1.protectedMap.get(COSE_ALG) !== COSE_EDDSA) refuse(code, 'a signer binding that is not EdDSA');
      // Detached (the claim signer's certificate), or attached as it is.
      const bound = sign1.payload === null ? binding : sign1.payload;
      if (!(await this.backend.verify(ED25519, publicKey, coseToBeSigned(sign1.protectedBytes, bound), sign1.signature))) {
        refuse(code, 'a session key not bound to the claim signer');
      }
      if (k.createdAt === null) refuse(code, 'a session key without its creation time');
      if (!isUint(k.validity)) refuse(code, 'a session key without its validity period');
      if (!isUint(k.minSequence)) refuse(code, 'a session key without its minimum sequence number');
      keys.set(toHex(kid), { publicKey, minSequence: big(k.minSequence), createdAt: k.createdAt, validity: big(k.validity) });
    }
    return keys;
  }

  async checkFragment(rendition, kind, bytes, discontinuity) {
    const r = this.renditions.get(rendition);
    if (r && r.state === 'unsigned') return { ok: true, status: 'unsigned' };
    const code = C2PA.segmentInvalid;
    if (!r) refuse(code, 'no init segment verified before it');
    if (r.state !== 'verified') refuse(code, 'its init segment was refused');
    if (discontinuity !== null && discontinuity !== undefined && discontinuity !== r.discontinuity) {
      if (r.discontinuity !== null) r.last = { segment: null, part: null };
      r.discontinuity = discontinuity;
    }
    const manifest = r.manifest;
    this.checkRevocation(manifest.credentials);
    const boxes = topLevel(bytes, code);
    const first = boxes[0];
    if (!first || !isVsiEmsg(first)) refuse(code, 'the first box is not a VSI emsg');
    const p = payloadOf(first);
    if (p[0] !== 0) refuse(code, 'a VSI emsg of another version');
    // version and flags, scheme URI and value (NUL-terminated), then four u32s.
    let at = 4;
    for (let i = 0; i < 2; i += 1) {
      const end = p.subarray(at).indexOf(0);
      if (end < 0) refuse(code, 'a VSI emsg is cut off');
      at += end + 1;
    }
    if (p.length < at + 16) refuse(code, 'a VSI emsg is cut off');
    const sign1 = coseSign1(readCbor(p.subarray(at + 16), code, 'the VSI'), code, 'the VSI');
    if (sign1.protectedMap.get(COSE_ALG) !== COSE_EDDSA) refuse(code, 'a VSI that is not EdDSA');
    const kid = sign1.unprotected.get(COSE_KID);
    const key = isBytes(kid) ? manifest.keys.get(toHex(kid)) : undefined;
    if (!key) {
      // Told apart (`unknownKey`): the init segment in hand may be another session's
      // (`VerificationSession.checkProvenance`).
      const error = new Refusal(code, 'a VSI by a key the manifest has no session key for');
      error.unknownKey = true;
      throw error;
    }
    if (sign1.payload === null) refuse(code, 'a VSI without its payload');
    if (!(await this.backend.verify(ED25519, key.publicKey, coseToBeSigned(sign1.protectedBytes, sign1.payload), sign1.signature))) {
      refuse(code, "the VSI's signature does not verify");
    }
    const info = readCbor(sign1.payload, code, 'the segment info');
    if (!(info instanceof CborMap)) refuse(code, 'segment info that is not a map');
    if (info.get('manifestId') !== manifest.label) refuse(code, 'a VSI naming another manifest');
    const sequence = info.get('sequenceNumber');
    const fragmentSequence = firstFragmentSequence(boxes, code);
    if (!isUint(sequence)) refuse(code, 'a VSI without its sequence number');
    // A part is numbered by its mfhd; a segment by its place in the rendition (segment
    // indexing, C2PA 2.3 §19.4.1), which only has to rise.
    if (kind === 'part' && big(sequence) !== BigInt(fragmentSequence)) {
      refuse(code, `a VSI of sequence ${sequence} on fragment ${fragmentSequence}`);
    }
    const seq = big(sequence);
    if (seq < key.minSequence) refuse(code, `sequence ${seq} before the session key's first, ${key.minSequence}`);
    const iat = sign1.protectedMap.get('iat');
    if (!isUint(iat) || big(iat) < key.createdAt || big(iat) > key.createdAt + key.validity) {
      refuse(code, `signed at ${iat}, outside the session key's validity`);
    }
    const bmffHash = info.get('bmffHash');
    const wanted = bmffHash instanceof CborMap ? bmffHash.get('hash') : undefined;
    if (!isBytes(wanted) || !equalBytes(await hashV3(boxes, isVsiEmsg), wanted)) refuse(code, 'the fragment is not the one hashed');
    // Checked and moved on at once, after every wait: a concurrent check sees one or the other.
    const last = r.last[kind === 'part' ? 'part' : 'segment'];
    if (last !== null && seq <= last) refuse(code, `sequence ${seq} after ${last}`);
    r.last[kind === 'part' ? 'part' : 'segment'] = seq;
    return { ok: true, status: 'verified' };
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
export const ANCHORS_PATH = '/trust/v1/provenance-anchors';
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
  // The root's anchors of other C2PA signers' CAs (none where the edge serves none): each
  // is checked against the root where it is used, so the edge cannot add one.
  const anchors = await fetchBounded(ANCHORS_PATH, MAX_DELIVERED_ANCHORS_LEN, { signal: timeout(TRUST_TIMEOUT_MS) })
    .then((bytes) => (bytes ? provenanceAnchorsOf(bytes) : []))
    .catch(() => []);
  // Called on every check: fetches the bundle again, in the background, once it is a
  // minute old, so a revocation reaches a viewer who keeps watching.
  const keepFresh = () => {
    if (performance.now() - last >= REFRESH_EVERY_MS) refresh(true);
  };
  return { trust, mode: backend.mode, fingerprint: root.fingerprint, refresh, keepFresh, anchors };
}

/**
 * The provenance anchors among PEM blocks (`SEALCAST PROVENANCE ANCHOR`, as
 * `/trust/v1/provenance-anchors` serves them and `certs::c2pa::anchors_pem` writes them),
 * as byte arrays: at most MAX_DELIVERED_ANCHORS; blocks that are not base64 are passed over.
 */
export function provenanceAnchorsOf(bytes) {
  const text = new TextDecoder().decode(asBytes(bytes));
  const out = [];
  for (const m of text.matchAll(/-----BEGIN SEALCAST PROVENANCE ANCHOR-----([A-Za-z0-9+/=\s]*)-----END SEALCAST PROVENANCE ANCHOR-----/g)) {
    if (out.length >= MAX_DELIVERED_ANCHORS) break;
    try {
      out.push(Uint8Array.from(atob(m[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0)));
    } catch {
      // not base64: not an anchor
    }
  }
  return out;
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
  /**
   * `playback`: the URL the viewer opened (PlaybackVerifier's option; none: live);
   * `delegation`: the part-key delegation at a `.partkey` URL when the page already has
   * it (MoQ carries it on the statements track), or null to fetch it.
   */
  constructor(trustPromise, tally, playback = null, { delegation = null } = {}) {
    this.tally = tally;
    if (!this.tally.provenance) {
      this.tally.provenance = { signer: '', verified: 0, unsigned: 0, refused: 0, unchecked: 0, cosigned: 0 };
    }
    this.verifier = null;
    this.c2pa = null;
    this.c2paSince = new Map(); // rendition -> the discontinuity of its fragments checked since its init
    this.c2paLast = null; // the rendition of the fragment C2PA-checked last
    this.initsPending = new Map(); // "stream/rendition" -> the verdict of its init segment being checked
    this.initsSeen = new Set(); // "stream/rendition" whose init segment has been handed to check()
    this.initWaiters = new Map(); // "stream/rendition" -> fragments waiting for their init's check to start
    this.ready = trustPromise.then((opened) => {
      this.opened = opened;
      if (opened.trust) {
        this.verifier = new PlaybackVerifier(opened.trust, {
          refreshTrust: () => opened.refresh(),
          fetchDelegation: (url) => fetchBounded(url, MAX_PART_KEY_SIDECAR),
          carriedDelegation: delegation,
          playback,
          provenance: (f, how) => this.checkProvenance(f, how),
        });
        const trust = opened.trust;
        const cosigned = cosignatureChecker(trust);
        this.c2pa = new C2paLiveValidator({
          root: trust.root,
          backend: trust.backend,
          revokedAt: (id) => trust.revoked.get(id),
          anchors: () => opened.anchors || [],
          cosigned: async (c) => {
            const verdict = await cosigned(c);
            if (verdict === true) this.tally.provenance.cosigned = (this.tally.provenance.cosigned || 0) + 1;
            return verdict;
          },
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
    if (this.c2pa) this.c2pa.reposition();
  }

  /**
   * The C2PA live-video check of `f`, after our own statements verified it: a refusal
   * (its reason the C2PA code) or null. Counted in `tally.provenance` ({ signer: the claim
   * signer's commonName of the last init verified, verified, unsigned, refused, unchecked:
   * fragments after a discontinuity whose init segment was not checked again, cosigned:
   * init segments whose co-signature verified }).
   */
  async checkProvenance(f, { back = false } = {}) {
    const target = parseMediaUrl(f.url);
    if (!this.c2pa || !target) return null;
    const rendition = `${target.stream}/${target.rendition}`;
    const p = this.tally.provenance;
    if (target.kind === 'init') {
      this.c2paSince.delete(rendition);
    } else {
      // A fragment of a rendition without an init segment (MPEG-TS) has nothing to be
      // checked against; hls.js loads a CMAF rendition's init segment before its fragments.
      if (!this.c2pa.knows(rendition)) return null;
      // After a discontinuity (a new publish session: another manifest and session key)
      // the init segment keeps its URL, and hls.js may go on with the one it has: until
      // an init segment is checked again, the rendition's fragments of another
      // discontinuity than those checked since its init are not C2PA-checked (our own
      // statements still are), never refused for naming a manifest the player has not seen.
      const since = this.c2paSince.get(rendition);
      if (since !== undefined && since !== f.discontinuity) {
        p.unchecked += 1;
        return null;
      }
      if (since === undefined) {
        if (this.c2paSince.size >= MAX_REMEMBERED) this.c2paSince.clear();
        this.c2paSince.set(rendition, f.discontinuity);
      }
      // Back on a rendition after another's fragments (a rung switch, and back): hls.js
      // loads from where the playhead is, which may be before what this rendition was
      // checked up to. C2PA's rule that its numbers rise holds within one stay on a
      // rendition; across rungs, continuity is our statements' (PlaybackVerifier's), which
      // let only the previous number of another rung through.
      // The same holds for a step back on one rendition that our statements allowed (`back`:
      // hls.js backtracking right after a switch, or restarting a segment at an
      // independent part); they allow it once, and C2PA's numbers rise again from there.
      if ((this.c2paLast !== null && this.c2paLast !== rendition) || back) this.c2pa.startOver(rendition);
      this.c2paLast = rendition;
    }
    const c = await this.c2pa.check({
      rendition,
      kind: target.kind,
      bytes: f.bytes,
      discontinuity: target.kind === 'init' ? null : f.discontinuity,
    });
    if (!c.ok) {
      // A fragment of an earlier publish session than the newest one the playlist lists,
      // signed by a C2PA session key the init segment in hand does not name: the init
      // segment keeps its URL across sessions and is always the newest session's, so a
      // player that starts (or starts over) while the playlist still lists the session
      // before a reconnect holds no init segment to check that session's fragments with.
      // Not C2PA-checked (our own statements verified its bytes), as after a discontinuity
      // above; the next fragment is checked against the init again.
      const earlier = Number.isFinite(f.newestDiscontinuity) && Number.isFinite(f.discontinuity) &&
        f.discontinuity < f.newestDiscontinuity;
      if (c.unknownKey && earlier) {
        this.c2paSince.delete(rendition);
        p.unchecked += 1;
        return null;
      }
      p.refused += 1;
      return { ok: false, reason: c.code, detail: c.detail };
    }
    if (c.status === 'verified') {
      p.verified += 1;
      if (c.signer !== undefined) p.signer = c.signer;
    } else {
      p.unsigned += 1;
    }
    return null;
  }

  /**
   * Checks `f` (PlaybackVerifier.check's argument) and counts the verdict. A fragment
   * waits for the verdict on its rendition's init segment when one is being checked: a
   * recording's segments are judged at the time of the description that init verified
   * (PlaybackVerifier.signedAt), and one checked a moment before it would be judged at
   * the viewer's clock instead (under load a player loads both at once). A recording's
   * fragment that comes before its rendition's init segment reached this at all (hls.js
   * loads both at once, and the fragment's sidecar may arrive first) waits for that init's
   * check to start, at most INIT_WAIT_MS.
   */
  async check(f) {
    const target = parseMediaUrl(f.url);
    const rendition = target ? `${target.stream}/${target.rendition}` : '';
    if (target && target.kind === 'init') {
      const pending = this.checkNow(f);
      this.initsPending.set(rendition, pending);
      if (this.initsSeen.size >= MAX_RENDITIONS_SEEN) this.initsSeen.clear();
      this.initsSeen.add(rendition);
      for (const start of this.initWaiters.get(rendition) || []) start();
      this.initWaiters.delete(rendition);
      try {
        return await pending;
      } finally {
        if (this.initsPending.get(rendition) === pending) this.initsPending.delete(rendition);
      }
    }
    if (target && target.session !== null && !this.initsSeen.has(rendition)) {
      await new Promise((start) => {
        const waiting = this.initWaiters.get(rendition) || [];
        waiting.push(start);
        this.initWaiters.set(rendition, waiting);
        setTimeout(start, INIT_WAIT_MS);
      });
    }
    const init = target ? this.initsPending.get(rendition) : undefined;
    if (init) await init;
    return this.checkNow(f);
  }

  async checkNow(f) {
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
      this.tally.refused.push({ url: f.url, reason: verdict.reason, detail: verdict.detail || '', id: f.load });
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
// How long a recording's fragment waits for its rendition's init segment to reach the
// verifier (VerificationSession.check): a player asks for the init first, so it is normally
// a matter of which sidecar came back first.
const INIT_WAIT_MS = 3000;
// Renditions whose init segment a session remembers having seen.
const MAX_RENDITIONS_SEEN = 256;

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
          const wanted = () => this.state === 'checking';
          verdict = await session.check({ ...describe(ctx), url: ctx.url, bytes, sidecar, load, wanted });
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

// ---- thumbnails -----------------------------------------------------------------------------

/**
 * Checks a thumbnail (`jpeg`, the bytes of `thumbnail.jpg`) against its sidecar (the bytes of
 * `thumbnail.jpg.sig`), with the same trust as the media: the envelope and statement decode
 * strictly under the thumbnail's cap (malformed_signature; another kind's statement is
 * wrong_kind), it is about the stream asked for (wrong_stream) and, for a recording's, of
 * the recording's session (wrong_session), the bytes are the ones signed (wrong_length,
 * digest_mismatch), and a key the root certified (not a delegated one) signed it at the
 * time checked: the viewer's clock for a live one, the capture time (never later than now)
 * for a recording's (revoked_key, unknown_key, wrong_algorithm, expired_key, bad_signature).
 * Resolves the statement; throws a Refusal.
 */
export async function verifyThumbnail(trust, jpeg, sidecar, { stream, session = null, recorded = false }, nowMs = Date.now()) {
  if (!sidecar || sidecar.length === 0) refuse('missing_signature', 'no thumbnail.jpg.sig');
  const { statement, signature } = decodeEnvelope(asBytes(sidecar), MAX_EVENT_STATEMENT_LEN);
  if (!startsWith(statement, TAG.thumbnail)) {
    const kind = statementKind(statement);
    refuse(kind ? 'wrong_kind' : 'malformed_signature', `a ${kind || 'foreign'} statement for a thumbnail`);
  }
  if (statement.length > MAX_THUMBNAIL_STATEMENT_LEN) refuse('malformed_signature', 'thumbnail statement over its cap');
  const t = decodeThumbnail(statement);
  if (t.stream !== stream) refuse('wrong_stream', `a thumbnail of ${t.stream}, not ${stream}`);
  if (session !== null && t.session !== session) refuse('wrong_session', 'a thumbnail of another session');
  const bytes = asBytes(jpeg);
  if (BigInt(bytes.length) !== t.byteLength) refuse('wrong_length', `${bytes.length} bytes, signed ${t.byteLength}`);
  if (!equalBytes(await sha256(bytes), t.digest)) refuse('digest_mismatch', 'the thumbnail is not the one signed');
  const now = BigInt(Math.floor(nowMs / 1000));
  const at = recorded ? [t.capturedMs / 1000n, now].reduce((a, b) => (a < b ? a : b)) : now;
  const key = trust.resolveKey(t.keyId, t.algorithm, at);
  if (!(await trust.backend.verify(t.algorithm, key.publicKey, statement, signature))) {
    refuse('bad_signature', 'the thumbnail statement');
  }
  return t;
}

/**
 * The thumbnails a page shows: fetched with their sidecars, verified (`verifyThumbnail`) and
 * handed out as blob URLs; one that does not verify is never shown. `counts` is what
 * scripts read (`window.sealcast.thumbnails`): verified, refused, and the last refusals.
 */
export class ThumbnailLoader {
  constructor(opened) {
    this.opened = opened; // openTrust()'s promise
    this.counts = { verified: 0, refused: 0, reasons: [] };
    this.held = new Map(); // url -> { sidecar hex, blob URL }
  }

  /**
   * A blob URL of the verified thumbnail at `url` (`/live/{s}/thumbnail.jpg` or
   * `/vod/{s}/{id}/thumbnail.jpg`, a playback token in its query if any), or null.
   */
  async load(url) {
    const opened = await this.opened;
    if (!opened || !opened.trust) return null; // nothing verifies here: nothing is shown
    const path = new URL(url, location.href);
    const live = /^\/live\/([A-Za-z0-9][A-Za-z0-9_-]{0,63})\/thumbnail\.jpg$/.exec(path.pathname);
    const vod = /^\/vod\/([A-Za-z0-9][A-Za-z0-9_-]{0,63})\/([0-9a-f]{16})\/thumbnail\.jpg$/.exec(path.pathname);
    if (!live && !vod) return null;
    const expect = live
      ? { stream: live[1] }
      : { stream: vod[1], session: BigInt(`0x${vod[2]}`), recorded: true };
    const sigUrl = new URL(path);
    sigUrl.pathname += '.sig';
    // The picture can change between the two requests (a live one every few seconds):
    // a pair that does not match is asked for once more before it counts as refused.
    for (let attempt = 0; ; attempt += 1) {
      let sidecar;
      let jpeg;
      try {
        sidecar = await fetchBounded(sigUrl.href, MAX_THUMBNAIL_SIDECAR, { cache: 'no-cache', signal: timeout(TRUST_TIMEOUT_MS) });
        if (!sidecar) return null;
        const key = toHex(sidecar);
        const held = this.held.get(path.href);
        if (held && held.key === key) return held.blob;
        jpeg = await fetchBounded(path.href, MAX_THUMBNAIL_BYTES, { cache: 'no-cache', signal: timeout(TRUST_TIMEOUT_MS) });
        if (!jpeg) return null;
        try {
          await verifyThumbnail(opened.trust, jpeg, sidecar, expect);
        } catch (error) {
          if (error instanceof Refusal && error.reason === 'unknown_key' && opened.refresh && attempt === 0) {
            await opened.refresh(true);
            continue;
          }
          throw error;
        }
        const blob = URL.createObjectURL(new Blob([jpeg], { type: 'image/jpeg' }));
        if (held) URL.revokeObjectURL(held.blob);
        this.held.set(path.href, { key, blob });
        this.counts.verified += 1;
        return blob;
      } catch (error) {
        if (!(error instanceof Refusal)) return null; // not served (yet), or the network: no verdict
        if (attempt === 0 && (error.reason === 'digest_mismatch' || error.reason === 'wrong_length')) continue;
        this.counts.refused += 1;
        this.counts.reasons.push({ url: path.pathname, reason: error.reason });
        if (this.counts.reasons.length > 50) this.counts.reasons.shift();
        return null;
      }
    }
  }
}
