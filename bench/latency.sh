#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): glass-to-glass latency in Chromium, read from
# the clock `sealcast source` stamps into every frame, for
#   - sealcast LL-HLS (CMAF, parts of 0.333 s), through the load balancer over HTTPS,
#   - sealcast plain HLS (CMAF without parts: what a player without LL support gets),
#     through the load balancer over HTTPS,
#   - nginx-rtmp's HLS (`hls_fragment 2s`), served by nginx over HTTP,
# all fed by one publisher: `sealcast source` publishes 720p30 to nginx-rtmp, which plays
# it out as HLS and pushes the same RTMP stream on to both sealcast clusters. Each viewer
# is the same page, opened by bench/viewers' `sealcast-glass`, which samples the stamped
# latency every 250 ms for SECONDS after a 10 s settle. The three are measured in turn,
# ROUNDS times interleaved (LL, plain, nginx, LL, ...); p50/p90/max over every sample of a
# system, and the longest stall. The driver runs it whole: `sealcast-bench run latency`
# (bench/viewers/src/benches/latency.rs says how).
#
# The ladders are the source rung only by default (LADDER=src): two cores cannot run three
# x264 rungs, two clusters, nginx, the publisher and Chromium without falling behind real
# time, which would measure the machine, not the delivery path. LADDER=full uses the
# default ladder on the LL cluster.
#
# Writes bench/out/latency.json and a section in docs/benchmarks.md.
#
# Usage: bench/latency.sh [SECONDS] [ROUNDS]   (defaults 60 and 5; `--no-doc` prints the
# section only, `--results FILE` puts the raw results there)
# Environment: LADDER, SEALCAST_BIN (sealcast-glass beside it; else the release build),
# SEALCAST_BENCH (the driver; else the release build's)
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath "$SEALCAST_BIN")"
cd "$(dirname "$0")/.."
source scripts/setup.sh

source bench/lib.sh
bench_install latency nginx libnginx-mod-rtmp chromium chromium-driver curl
bench_binary # the release build (with sealcast-glass) unless SEALCAST_BIN names one
bench_tool sealcast-glass; GLASS="$TOOL"
bench_driver
exec "$DRIVER" run latency --bin "$BIN" --glass-bin "$GLASS" "$@"
