// sealcast verification worker: checks signatures with the vendored @noble libraries for
// browsers without native ML-DSA-65 (or Ed25519) in WebCrypto, off the page's main thread.
// A module worker started by verify.js; each library is imported the first time a
// signature of its algorithm arrives, so an ML-DSA cluster never loads the curve code.
//
// Message in: { id, algorithm (1 ML-DSA-65, 2 Ed25519), publicKey, message, signature }
// (Uint8Arrays). Message out: { id, ok } (whether the signature verifies), or { id, error }
// when the library could not be loaded.

const ML_DSA_65 = 1;
const ED25519 = 2;
// FIPS 204 context of every sealcast ML-DSA signature (certs/src/signing/keys.rs).
const MLDSA_CONTEXT = new TextEncoder().encode('sealcast/v1');

const modules = new Map();

/** The verify function for `algorithm`, its library imported on first use. */
async function verifier(algorithm) {
  if (!modules.has(algorithm)) {
    if (algorithm === ML_DSA_65) {
      modules.set(algorithm, import('./noble-post-quantum-ml-dsa.js').then(({ ml_dsa65: scheme }) =>
        (publicKey, message, signature) => scheme.verify(signature, message, publicKey, { context: MLDSA_CONTEXT })));
    } else if (algorithm === ED25519) {
      // Strict RFC 8032 decoding, as the cluster's ed25519-dalek verify_strict.
      modules.set(algorithm, import('./noble-curves-ed25519.js').then(({ ed25519 }) =>
        (publicKey, message, signature) => ed25519.verify(signature, message, publicKey, { zip215: false })));
    } else {
      return () => false;
    }
  }
  return modules.get(algorithm);
}

async function verify({ algorithm, publicKey, message, signature }) {
  // A library that does not load is the worker's failure (the promise rejects) ...
  const check = await verifier(algorithm);
  try {
    return check(publicKey, message, signature) === true;
  } catch {
    // ... a malformed key or signature is a signature that does not verify.
    return false;
  }
}

self.addEventListener('message', (event) => {
  const request = event.data || {};
  verify(request).then(
    (ok) => self.postMessage({ id: request.id, ok: ok === true }),
    (error) => self.postMessage({ id: request.id, error: String((error && error.message) || error) }),
  );
});
