//! The broadcast crate embeds the web front end (`../web/src`) and hls.js, vendored at a
//! pinned version under `../web/vendor/` with its licence, with `include_bytes!` (see
//! `src/assets.rs`). This script copies nothing: it tells cargo when to rebuild, checks
//! the vendored hls.js against the SHA-256 pinned below (so an altered or swapped file
//! fails the build with a clear message instead of being shipped to every viewer), and
//! fails with a clear message when a file is missing, where `include_bytes!` would only say
//! "No such file".
//!
//! To update hls.js: download the npm tarball of the new version, check its `integrity`
//! against the registry, copy `dist/hls.min.js` and `LICENSE` into
//! `web/vendor/hls.js-<version>/`, and change [`HLS_JS`] and [`HLS_JS_SHA256`] here and the
//! path in `src/assets.rs`.

// Cargo reads its directives from a build script's standard output.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::ExitCode;

use sha2::{Digest, Sha256};

/// The files `src/assets.rs` embeds, relative to `../web`.
const FRONT_END: [&str; 5] = [
    "src/index.html",
    "src/dashboard.html",
    "src/player.js",
    "src/dashboard.js",
    "src/style.css",
];
/// hls.js 1.7.4's `dist/hls.min.js` from the npm tarball whose sha512 integrity is
/// `3GlxGdPv…Tpm+tg==` (the registry's), relative to `../web`.
const HLS_JS: &str = "vendor/hls.js-1.7.4/hls.min.js";
/// Its licence, shipped beside it.
const HLS_JS_LICENSE: &str = "vendor/hls.js-1.7.4/LICENSE";
/// SHA-256 of [`HLS_JS`], hex.
const HLS_JS_SHA256: &str = "cfc70cc9e9fc63d071919e087670abc760c8fd1bc889b88588026e4d22193bbe";

fn main() -> ExitCode {
    // A directory is scanned whole: any file under web/src changing reruns this.
    println!("cargo::rerun-if-changed=../web/src");
    println!("cargo::rerun-if-changed=../web/{HLS_JS}");
    println!("cargo::rerun-if-changed=build.rs");

    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let hls = match std::fs::read(web.join(HLS_JS)) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("error: cannot read web/{HLS_JS} (the vendored hls.js): {error}");
            return ExitCode::FAILURE;
        }
    };
    let digest = hex(&Sha256::digest(&hls));
    if digest != HLS_JS_SHA256 {
        eprintln!(
            "error: web/{HLS_JS} has SHA-256 {digest}, but the pinned hls.js 1.7.4 has \
             {HLS_JS_SHA256}: the vendored file was altered. Restore it from git, or, to \
             update hls.js on purpose, follow the steps at the top of broadcast/build.rs"
        );
        return ExitCode::FAILURE;
    }
    let missing: Vec<&str> = FRONT_END
        .into_iter()
        .chain([HLS_JS_LICENSE])
        .filter(|file| !web.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "error: the web front end is incomplete, missing: {}",
            missing
                .iter()
                .map(|f| format!("web/{f}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
