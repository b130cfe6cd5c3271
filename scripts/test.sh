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

# The compose trial's images stand on one Debian root filesystem made with debootstrap
# (about 3 minutes cold, mostly download and unpacking), and each of their layers costs a
# walk of that filesystem on this engine's storage driver (about 4 minutes for all of
# them): the root filesystem and the images that do not hold sealcast are made here in
# the background while Rust compiles, instead of inside the trial after the build. Cached
# in the engine: seconds when they exist. Waited for before the tests run. Not made when
# SEALCAST_IMAGES=upstream says the trial will not use local images.
base_log=$(mktemp "${TMPDIR:-/tmp}/sealcast-images-base.XXXXXX")
base_pid=""
if [ "${SEALCAST_IMAGES:-auto}" != upstream ]; then
  scripts/images.sh --stand-ins >"$base_log" 2>&1 &
  base_pid=$!
fi

echo "== cargo fmt" >&2
cargo fmt --all -- --check
echo "== module layout (no import circles between files, no unexplained long file)" >&2
python3 scripts/check-modules.py
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (build)" >&2
cargo test --workspace --locked --no-run
# The trial would make the root filesystem itself if this failed; it says why here.
if [ -n "$base_pid" ] && ! wait "$base_pid"; then
  echo "test.sh: making the compose trial's images failed (the trial tries again):" >&2
  tail -n 20 "$base_log" >&2
fi
rm -f "$base_log"
echo "== cargo test" >&2
cargo test --workspace --locked
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
