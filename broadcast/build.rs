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
//!
//! The `@noble` modules of the player's verification worker ([`NOBLE`]) are pinned the same
//! way; `web/vendor/noble/vendor.py` re-creates them from the npm tarballs (checked against
//! their SHA-256 sums) and prints the list below. This script also writes
//! `$OUT_DIR/noble.rs`, the `match` from a module's file name to its embedded bytes that
//! `src/assets.rs` includes, so the list is written once here.

// Cargo reads its directives from a build script's standard output.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::ExitCode;

use sha2::{Digest, Sha256};

/// The files `src/assets.rs` embeds, relative to `../web`.
const FRONT_END: [&str; 11] = [
    "src/index.html",
    "src/dashboard.html",
    "src/player.js",
    "src/dashboard.js",
    "src/style.css",
    "src/verify.js",
    "src/verify-worker.js",
    "src/publish.html",
    "src/publish.js",
    "vendor/noble/LICENSE-post-quantum",
    "vendor/noble/LICENSE-hashes-curves",
];
/// `@noble/post-quantum` 0.7.1, `@noble/hashes` and `@noble/curves` 2.4.0: the modules in
/// `../web/vendor/noble/` (import specifiers made relative, nothing else changed) and their
/// SHA-256, hex.
const NOBLE: [(&str, &str); 18] = [
    (
        "noble-curves-abstract-curve.js",
        "fc65d21a501f548352605c49c79df837ec8480d1b144d6f9905b293400268475",
    ),
    (
        "noble-curves-abstract-edwards.js",
        "bfb4e2760d2368c23e39a9ceeef97f396594701905791e0b96595bd882a7715b",
    ),
    (
        "noble-curves-abstract-fft.js",
        "0e8578a17a55fe63bee1baccc06b64efe988be0324bd0606147700e13e154af1",
    ),
    (
        "noble-curves-abstract-frost.js",
        "71c73dd1b132bfe7b400dfafca95f42bee8bf3215f31d1b66c8cfcdf51a3b911",
    ),
    (
        "noble-curves-abstract-hash-to-curve.js",
        "6b9c85f4e1839327cbcf18135a8e97a8a6c001e672f5318997eeae832bb0c8f0",
    ),
    (
        "noble-curves-abstract-modular.js",
        "5f8f7fae5eb9bc7f4c71091a8bcf4506c3237b1ccc3f712a1bbde5826bb98695",
    ),
    (
        "noble-curves-abstract-montgomery.js",
        "6b0e3d0ecf75462fef0ac1bc2e72e0901ee867cc7958acc48804dacbbf0f9626",
    ),
    (
        "noble-curves-abstract-oprf.js",
        "aefebc3d297f3efaa3a0971d31b13820afe878493f1df56c226c5bc06e3f4579",
    ),
    (
        "noble-curves-ed25519.js",
        "cb59902c3030d59aa19e9c0e8af37431bdea57bdd8f8570ab8ee3271b6204cde",
    ),
    (
        "noble-curves-utils.js",
        "6f15f496ec4c538513f4630347176aec969c29e99389ace97286711e1a192d5b",
    ),
    (
        "noble-hashes-_md.js",
        "84ebb11ff5b52e365dad0cd8193563cfafac72d43c9efadb2afa4e4a85752105",
    ),
    (
        "noble-hashes-_u64.js",
        "b09da8c07fe8187c07649494cdb7cd0bcf13df90b506a9473d19e4d5f8c2e102",
    ),
    (
        "noble-hashes-sha2.js",
        "398b0a091cbe10842eb838a03798c50797b6eac9eabc71b9517cf07392694cc8",
    ),
    (
        "noble-hashes-sha3.js",
        "71087fa24d5ef558b24fcaf36d9902f0fd3e9b42ad13628d026621d3ce392dd6",
    ),
    (
        "noble-hashes-utils.js",
        "037ad49adb78168b6b699598fd33f85f7877456b1d28b4d032e2a1a16807947c",
    ),
    (
        "noble-post-quantum-_crystals.js",
        "0146ed2e75b61f08c6fa6f0bd0275ae4bad925daa909af73654a1f7847745ba5",
    ),
    (
        "noble-post-quantum-ml-dsa.js",
        "895c0bc6593ec609b50f4ffe87ba4b8d5e40d26b33ad63af5fdfb2cc58642392",
    ),
    (
        "noble-post-quantum-utils.js",
        "1201e9ca5c8bb638b97b4b107e25b89d247be58079d9b818b8f55c0a6ca51c51",
    ),
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
    println!("cargo::rerun-if-changed=../web/vendor/noble");
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
    for (name, pinned) in NOBLE {
        let path = format!("vendor/noble/{name}");
        let digest = match std::fs::read(web.join(&path)) {
            Ok(bytes) => hex(&Sha256::digest(&bytes)),
            Err(error) => {
                eprintln!("error: cannot read web/{path} (a vendored @noble module): {error}");
                return ExitCode::FAILURE;
            }
        };
        if digest != pinned {
            eprintln!(
                "error: web/{path} has SHA-256 {digest}, but the pinned one has {pinned}: the \
                 vendored file was altered. Restore it from git, or re-create it with \
                 web/vendor/noble/vendor.py and update NOBLE in broadcast/build.rs"
            );
            return ExitCode::FAILURE;
        }
    }
    let mut embed = String::from("match name {\n");
    for (name, _) in NOBLE {
        let path = web.join("vendor/noble").join(name);
        embed += &format!(
            "    {name:?} => include_bytes!({:?}).as_slice(),\n",
            path.display().to_string()
        );
    }
    embed += "    _ => &[],\n}\n";
    let out = Path::new(&std::env::var_os("OUT_DIR").unwrap_or_default()).join("noble.rs");
    if let Err(error) = std::fs::write(&out, embed) {
        eprintln!("error: cannot write {}: {error}", out.display());
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
