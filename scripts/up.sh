#!/usr/bin/env bash
# Builds sealcast (release) and runs the whole cluster on this machine: `sealcast up`.
# Extra arguments go to `sealcast up` (try --demo).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh build
cargo build --release --locked -p sealcast >&2
exec target/release/sealcast up "$@"
