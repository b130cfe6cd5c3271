#!/usr/bin/env bash
# Memory per idle viewer (issue 18): RSS a server adds for each idle keep-alive viewer
# connection, ours against the peers, side by side in the same run.
#
# Every measurement gets fresh processes (a process keeps memory it freed, so a second load
# on the same one would look free): node and node-1w (`sealcast up --broadcast 1` at its
# defaults and with one tokio worker, plain HTTP/1.1 to the node), nginx (one worker,
# serving a copy of the same playlist, `peers/nginx/memory.conf`), lb and lb-1w (`up`'s
# load balancer over TLS, HTTP/2 by ALPN), HAProxy (one thread, TLS 1.3 with only the suite
# ours picks, `peers/haproxy/memory.cfg`). CONNECTIONS idle connections (`sealcast-idle`)
# each ask once for the master playlist; the server's settled RSS before and after, over
# the connections, is the figure. RUNS runs, the targets interleaved (the order turns
# every run). The driver runs it whole: `sealcast-bench run memory`
# (bench/viewers/src/benches/memory.rs says how).
# Writes bench/out/memory.json (MEMORY_RESULTS moves it) and a section in
# docs/benchmarks.md (MEMORY_DOCS=FILE writes it there instead, MEMORY_DOCS= skips it),
# with the notes in bench/memory-notes.md (what a profile showed; edit them when the
# figures change; `sealcast-bench report memory`).
#
# 9,000 connections by default, not the 10,000 of the issue: the open-file limit here is
# 20,000 and cannot be raised, and HAProxy reserves two descriptors per client connection
# (its maxconn stops below 10,000); every server gets the same count.
#
# Usage: bench/memory.sh [RUNS [CONNECTIONS]]   (default 5 runs of 9,000 connections)
# Environment: TARGETS (default "node node-1w nginx lb lb-1w haproxy") narrows the list;
#   SETTLE (12) consecutive samples within 1 % make a settled RSS; SEALCAST_BIN (its bench
#   tools beside it; default the release build), SEALCAST_BENCH (the driver).
#
# Smoke run (one run of 100 connections, nothing written into the docs):
#   MEMORY_DOCS= MEMORY_RESULTS=/tmp/memory.json bench/memory.sh 1 100
set -euo pipefail
# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${MEMORY_RESULTS:-}" ] || export MEMORY_RESULTS="$(realpath -m "$MEMORY_RESULTS")"
[ -z "${MEMORY_DOCS:-}" ] || MEMORY_DOCS="$(realpath -m "$MEMORY_DOCS")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
# The driver checks the connections against this.
ulimit -n "$(ulimit -Hn)"
bench_install memory nginx haproxy curl openssl util-linux procps
bench_binary
bench_tool sealcast-idle; IDLE="$TOOL"
bench_driver
bench_report_docs "${MEMORY_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run memory "${REPORT_DOCS[@]}" --bin "$BIN" --idle-bin "$IDLE" "$@"
