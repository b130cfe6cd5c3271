#!/usr/bin/env bash
# Installs what is missing, then runs every check CI runs: format, lints, tests, docs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test

echo "== cargo fmt" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --locked
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
