#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): how many real-time viewers one edge worker
# holds, ours against nginx (plain HTTP) and, through a load balancer over TLS, ours against
# HAProxy, side by side on the same live stream, interleaved.
#
# What the driver cannot do for itself (install what is missing, raise the open-files
# limit, find or build the binaries), then `sealcast-bench run capacity`, which runs the
# benchmark whole: the cluster (a broker, ingest and source on core 1, one node with one
# worker on core 0), nginx on a mirror of the node and HAProxy beside ours over TLS, the
# interleaved ramps of `sealcast-viewers` (plain HLS, core 1), the report
# (bench/viewers/src/benches/capacity.rs says how).
#
# RUNS runs; each runs the pairs A B, the order flipping every run (node nginx lb haproxy,
# then nginx node haproxy lb, ...). Ratios ours/peer per run (median, min–max over the runs
# where both counts are exact), and the peer against itself in consecutive runs (A/A) as the
# noise floor. Writes bench/out/capacity.json (CAPACITY_RESULTS) and the section
# "## Viewers per edge worker (bench/capacity.sh)" in docs/benchmarks.md (CAPACITY_DOCS;
# CAPACITY_DOCS= skips it), and prints the section.
#
# Usage: bench/capacity.sh [RUNS]   (default 5)
# Environment (defaults in brackets; `sealcast-bench run capacity --help` lists them):
#   SEALCAST_BIN, VIEWERS_BIN   prebuilt binaries instead of `cargo build --release`
#   SEALCAST_BENCH              the driver (`sealcast-bench run capacity`) likewise
#   PARTS="1 2"                 1: node vs nginx, 2: lb vs HAProxy
#   STEP_SECS=8 JOIN_SECS=4 SETTLE_SECS=1 TTFB_MS=250
#   START=1000 STEP=500 GROWTH=1.25 MAX_VIEWERS=9000   plain HTTP ramps
#   TLS_START=250 TLS_STEP=250 TLS_GROWTH=1.2 TLS_MAX_VIEWERS=6000   TLS ramps
#   LAG_LIMIT_MS=50 GEN_BUSY=0.95   when the load generator counts as saturated
# CAPACITY_RESULTS and CAPACITY_DOCS, when relative, are relative to the repository's root.
set -euo pipefail
# Relative binaries are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install capacity nginx haproxy mosquitto curl openssl util-linux
# Every viewer holds up to two connections (HTTP/1.1), the servers one per connection; the
# driver checks MAX_VIEWERS and TLS_MAX_VIEWERS against this.
ulimit -n "$(ulimit -Hn)"
bench_binary
bench_driver
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
[ -x "$VIEWERS" ] || die "no sealcast-viewers binary at $VIEWERS"
bench_report_docs "${CAPACITY_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run capacity "${REPORT_DOCS[@]}" --bin "$BIN" --viewers-bin "$VIEWERS" "$@"
