#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): one broadcast node vs nginx serving the same live
# window.
#
# `sealcast up --broadcast 1` (a 1-worker tokio runtime) gets a short `sealcast source`
# publish until the node holds a full window, then keeps it fixed (the stream has ended);
# nginx (`worker_processes 1`, `sendfile on`, `access_log off`) serves a copy of the window
# on tmpfs under the same paths. Each server is pinned to core 0, the load generator to
# core 1. Loads, interleaved ours/nginx, RUNS times each: wrk -t1 -c64 (HTTP/1.1
# keep-alive) over the playlists, then over every segment of the window; h2load -t1 -c16
# -m4 over h2c, playlists and segments. Server CPU is utime+stime from /proc/PID/stat
# around each load. Reports requests/s, requests per server CPU-second, p99 latency and the
# ratios ours/nginx, with nginx against itself (A/A) as the noise floor. The driver runs it
# whole: `sealcast-bench run edge` (bench/viewers/src/benches/edge.rs says how); the report
# is `sealcast-bench report edge`.
#
# Writes bench/out/edge.json and a section in docs/benchmarks.md (EDGE_RESULTS and
# EDGE_DOCS move them; EDGE_DOCS= skips the docs).
#
# Usage: bench/edge.sh [RUNS [SECONDS]]   (default 3 runs of 4 s per load)
# Environment: EDGE_PROFILE=DIR   also profile each server under the wrk loads (perf) into DIR;
# SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`;
# SEALCAST_BENCH the driver (else the one beside SEALCAST_BIN, else the release build's)
# Smoke run: EDGE_DOCS= EDGE_RESULTS=/tmp/edge.json bench/edge.sh 1 1
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install edge nginx wrk nghttp2-client curl util-linux
[ -z "${EDGE_PROFILE:-}" ] || bench_install edge linux-perf
bench_binary
bench_driver
bench_report_docs "${EDGE_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run edge "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
