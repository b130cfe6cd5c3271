#!/usr/bin/env bash
# Installs what is missing, then runs every check CI runs: format, lints, tests, docs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says when it starts, in seconds since this script did (setup's apt installs
# and tool builds are the first figure), so a run's log shows where its time goes.
phase() { echo "== $1 (at $SECONDS s)" >&2; }
# The servers the tests build from crates (moq-relay, Garage) are built below, beside the
# workspace's own build.
SEALCAST_SETUP_TOOLS=later source scripts/setup.sh test

# The compose cluster's trial needs the Docker daemon: started here if it is installed but
# not running (its images stay in the engine's own storage, outside the clone, so a second
# run reuses them).
if ! docker info >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  phase "starting the Docker daemon"
  $sudo systemctl start docker 2>/dev/null || $sudo service docker start 2>/dev/null ||
    { $sudo nohup dockerd >"${TMPDIR:-/tmp}/sealcast-dockerd.log" 2>&1 & }
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "test.sh: the Docker daemon did not start" >&2; exit 1; }
fi

# In the background while Rust compiles, waited for before the tests run:
# - moq-relay and Garage, built from their crates (scripts/setup.sh, setup_test_tools):
#   their builds fill what the workspace's build leaves of the two cores (its own long
#   crates compile one at a time) instead of running before it (about 8 minutes cold);
# - the compose trial's images. They stand on one Debian root filesystem made with
#   debootstrap (about 3 minutes cold, mostly download and unpacking), and each of their
#   layers costs a walk of that filesystem on this engine's storage driver (about 4 minutes
#   for all of them): the root filesystem and the images that do not hold sealcast are
#   made here instead of inside the trial after the build. Cached in the engine: seconds
#   when they exist. Garage's image needs its binary, so a second pass makes it once that
#   is built. Not made when SEALCAST_IMAGES=upstream says the trial will not use local
#   images.
# Exit status 1: a tool did not build (fatal); 2: the images failed (the trial tries again).
beside_log=$(mktemp "${TMPDIR:-/tmp}/sealcast-beside-build.XXXXXX")
(
  setup_test_tools &
  tools=$!
  images=0
  garage_bin=${SEALCAST_GARAGE_BIN:-${SEALCAST_GARAGE_ROOT:-$HOME/.cache/sealcast/garage}/bin/garage}
  garage_before=$(stat -c %Y "$garage_bin" 2>/dev/null || echo none)
  local_images=no
  [ "${SEALCAST_IMAGES:-auto}" != upstream ] && local_images=yes
  if [ "$local_images" = yes ]; then
    scripts/images.sh --stand-ins || images=2
  fi
  wait "$tools" || exit 1
  # Garage's image, once its binary is built (the first pass had none, or an older one).
  garage_after=$(stat -c %Y "$garage_bin" 2>/dev/null || echo none)
  if [ "$local_images" = yes ] && [ "$images" = 0 ] && [ "$garage_after" != "$garage_before" ]; then
    scripts/images.sh --stand-ins || images=2
  fi
  exit "$images"
) >"$beside_log" 2>&1 &
beside_pid=$!

phase "cargo fmt"
cargo fmt --all -- --check
phase "module layout (no import circles between files, no unexplained long file)"
python3 scripts/check-modules.py
phase "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
phase "cargo test (build)"
cargo test --workspace --locked --no-run
phase "waiting for moq-relay, Garage and the compose images"
beside=0
wait "$beside_pid" || beside=$?
if [ "$beside" = 1 ]; then
  echo "test.sh: building moq-relay or Garage failed:" >&2
  tail -n 40 "$beside_log" >&2
  exit 1
elif [ "$beside" != 0 ]; then
  # The trial would make the root filesystem itself; it says why here.
  echo "test.sh: making the compose trial's images failed (the trial tries again):" >&2
  tail -n 20 "$beside_log" >&2
fi
rm -f "$beside_log"
phase "cargo test"
cargo test --workspace --locked
phase "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
phase "done"
