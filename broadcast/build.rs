//! The broadcast crate embeds the web front end (`../web/src`) and hls.js
//! (`../web/node_modules/hls.js/dist/hls.min.js`, the pinned npm package) with
//! `include_bytes!` (see `src/assets.rs`). This script copies nothing: it tells cargo when to
//! rebuild, and fails with a clear message when a file is missing, where `include_bytes!`
//! would only say "No such file".

// Cargo reads its directives from a build script's standard output.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::ExitCode;

/// The files `src/assets.rs` embeds, relative to `../web`.
const FRONT_END: [&str; 5] = [
    "src/index.html",
    "src/dashboard.html",
    "src/player.js",
    "src/dashboard.js",
    "src/style.css",
];
const HLS_JS: &str = "node_modules/hls.js/dist/hls.min.js";

fn main() -> ExitCode {
    // A directory is scanned whole: any file under web/src changing reruns this.
    println!("cargo::rerun-if-changed=../web/src");
    println!("cargo::rerun-if-changed=../web/{HLS_JS}");
    println!("cargo::rerun-if-changed=build.rs");

    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    if !web.join(HLS_JS).is_file() {
        eprintln!(
            "error: web/{HLS_JS} is missing: run `npm ci --prefix web` \
             (scripts/setup.sh does this), then build again"
        );
        return ExitCode::FAILURE;
    }
    let missing: Vec<&str> = FRONT_END
        .into_iter()
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
