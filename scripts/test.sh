#!/usr/bin/env bash
# Installs what is missing, then runs every check CI runs: format, lints, tests, docs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test

# The compose cluster's trial needs the Docker daemon: started here if it is installed but
# not running (its images stay in the engine's own storage, outside the clone, so a second
# run reuses them).
if ! docker info >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "== starting the Docker daemon" >&2
  $sudo systemctl start docker 2>/dev/null || $sudo service docker start 2>/dev/null ||
    { $sudo nohup dockerd >"${TMPDIR:-/tmp}/sealcast-dockerd.log" 2>&1 & }
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "test.sh: the Docker daemon did not start" >&2; exit 1; }
fi

echo "== cargo fmt" >&2
cargo fmt --all -- --check
echo "== module layout (no import circles between files, no unexplained long file)" >&2
python3 scripts/check-modules.py
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --locked
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
