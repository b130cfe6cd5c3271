#!/usr/bin/env bash
# Issue 33, third row of "benchmarks of the real workload": LL-HLS viewers through a cache
# tier (Varnish with deploy/varnish/sealcast.vcl) in front of the load balancer. What it
# shows: how many requests reach the origin as the audience grows (the goal: flat, the same
# at 100, 1,000 and 10,000 viewers), and the latency the cache adds (goal ≤ 0.3 s at p50).
# Systems: lb-100 (100 viewers straight to the load balancer over TLS + HTTP/2, the
# reference) and cdn-N for each N of AUDIENCES (N viewers through Varnish over h2c), each a
# fixed audience for STEP_SECS, interleaved over RUNS runs, the order rotating every run.
#
# What the driver cannot do for itself (install what is missing, raise the open-files
# limit, find or build the binaries), then `sealcast-bench run llhls-cdn`, which runs the
# benchmark whole: the live stream, its node, the load balancer with its origin listener,
# Varnish in front of it (afresh before every audience), the origin sampler, the viewers,
# the report (bench/viewers/src/benches/llhls_cdn.rs says how and what is measured).
#
# Writes bench/out/llhls-cdn.json (LLHLS_RESULTS) and the section "## LL-HLS viewers
# through a cache" of docs/benchmarks.md (LLHLS_DOCS, from the repository's root;
# LLHLS_DOCS= skips it).
#
# Usage: bench/llhls-cdn.sh [RUNS]   (default 5)
# Environment: SEALCAST_BIN, VIEWERS_BIN (prebuilt binaries), SEALCAST_BENCH (the driver),
# LLHLS_DOCS, and what `sealcast-bench run llhls-cdn --help` lists: LLHLS_RESULTS,
# AUDIENCES="100 1000 10000", STEP_SECS=30, JOIN_SECS=10, PART_TARGET=0.333,
# LAG_LIMIT_MS=50, GEN_BUSY=0.95, VARNISH_THREADS=12000 (most worker threads: its HTTP/2
# sessions hold one each).
#
# Smoke run (one run, a few viewers, nothing written into the docs):
#   AUDIENCES="5 20" STEP_SECS=12 JOIN_SECS=2 LLHLS_DOCS= \
#   LLHLS_RESULTS=/tmp/llhls-cdn.json bench/llhls-cdn.sh 1
set -euo pipefail
# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${VIEWERS_BIN:-}" ] || VIEWERS_BIN="$(realpath -m "$VIEWERS_BIN")"
[ -z "${LLHLS_RESULTS:-}" ] || export LLHLS_RESULTS="$(realpath -m "$LLHLS_RESULTS")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install llhls-cdn varnish mosquitto curl openssl util-linux
# The viewers' descriptors; the driver checks the largest audience against this.
ulimit -n "$(ulimit -Hn)"
bench_binary
bench_driver
VIEWERS="${VIEWERS_BIN:-}"
if [ -z "$VIEWERS" ]; then bench_tool sealcast-viewers; VIEWERS="$TOOL"; fi
[ -x "$VIEWERS" ] || die "no sealcast-viewers binary at $VIEWERS"
bench_report_docs "${LLHLS_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run llhls-cdn "${REPORT_DOCS[@]}" --bin "$BIN" --viewers-bin "$VIEWERS" "$@"
