#!/usr/bin/env bash
# Issue 33, second row of "benchmarks of the real workload": how many LL-HLS viewers the
# load balancer holds in front of one broadcast node, against HAProxy in front of the same
# node.
#
# Systems, on core 0 one at a time with the node, interleaved over RUNS runs:
#   - lb: `sealcast lb` at its shipping defaults (one tokio worker per core), finding the
#     node by its signed presence over MQTT as in a cluster;
#   - lb-1w: a second `sealcast lb` with `TOKIO_WORKER_THREADS=1`, since the peer runs
#     one thread;
#   - haproxy: HAProxy (`nbthread 1`) with the node as its one server, set up as in
#     bench/capacity.sh (and bench/lb.sh): the certificate `sealcast certs` made, TLS 1.3
#     restricted to the suite ours negotiated (the run stops if they differ), h2 and
#     http/1.1 by ALPN, the sticky cookie inserted, keep-alive and connection reuse to
#     the node, timeouts above the node's hold of a blocking request.
# The node (`sealcast broadcast`, default workers) answers the blocking reloads and holds
# the hinted parts behind either proxy; each viewer has one TLS connection and speaks
# HTTP/2 on it, as a browser does. Ramp, judgement, placement and report:
# `sealcast-bench run llhls` (bench/viewers/src/benches/llhls.rs). Writes
# bench/out/llhls-lb.json (LLHLS_RESULTS) and the section "## LL-HLS viewers through the
# load balancer" of docs/benchmarks.md (LLHLS_DOCS; LLHLS_DOCS= skips it).
#
# Usage: bench/llhls-lb.sh [RUNS]   (default 5)
# Environment: START=100 STEP=100 GROWTH=1.25 MAX_VIEWERS=3000, and the rest in
# bench/llhls-common.sh (the driver's defaults).
#
# Smoke run (one run, a few viewers, nothing written into the docs):
#   START=2 STEP=2 MAX_VIEWERS=4 STEP_SECS=5 JOIN_SECS=1 LLHLS_DOCS= \
#   LLHLS_RESULTS=/tmp/llhls-lb.json bench/llhls-lb.sh 1
set -euo pipefail
ROW=lb
source "$(dirname "$0")/llhls-common.sh"
