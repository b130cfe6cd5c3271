#!/usr/bin/env bash
# The compose cluster in containers (issue 30): how long `up -d` takes to a playable master
# playlist (cached images; and cold, with BENCH_COLD=1: the images made again first), from
# `--scale broadcast=6` to the first viewer on a new edge, the floating address's failover
# (holder SIGKILLed: address moved, first answer through it), and CPU and RSS per container
# (`docker stats`) idle and with one stream, next to the same roles as one `sealcast up`
# process. Writes bench/out/compose.json and its section of docs/benchmarks.md. The driver
# runs it whole: `sealcast-bench run compose` (bench/viewers/src/benches/compose.rs says
# how); BENCH_COLD=1 times the images made again first.
#
#   bench/compose.sh [RUNS]      RUNS up/scale/failover rounds (default 3)
#
# Needs Docker and a compose tool, and root (the init script's debootstrap, the SIGKILL of
# a container's process). Uses its own project name, host ports and subnet.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_build
bench_driver
exec "$DRIVER" run compose --bin "$BIN" "$@"
