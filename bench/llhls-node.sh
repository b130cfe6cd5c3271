#!/usr/bin/env bash
# Issue 33, first row of "benchmarks of the real workload": how many LL-HLS viewers one
# broadcast node holds, against nginx serving the same files.
#
# Systems, on core 0 one at a time, interleaved over RUNS runs:
#   - node: `sealcast broadcast` at its shipping defaults (one tokio worker per core);
#   - node-1w: a second node fed by the same ingest, with `TOKIO_WORKER_THREADS=1`, since
#     the peer runs one worker;
#   - nginx (`worker_processes 1`, `sendfile on`, no access log) serving a mirror of the
#     node's LL-HLS files on tmpfs. How the files are made: a mirror process on core 1
#     follows the node the way a low-latency player does (one blocking reload after
#     another) and, on each answer, writes the new parts, segments and init segment, then
#     the node's own playlist text, each by rename; so nginx serves the same bytes and the
#     same playlists a few milliseconds after the node, never a file it lacks. nginx
#     cannot hold a request until a part exists, so its viewers poll the playlist every
#     part target and fetch each new part as it is listed, without preload hints
#     (`sealcast-viewers --mode ll-poll`): the LL-HLS nginx can offer.
# All over plain HTTP/1.1 keep-alive (as bench/capacity.sh: HTTP/2 without TLS is not what
# nginx is good at). Ramp, judgement, placement and report: `sealcast-bench run llhls`
# (bench/viewers/src/benches/llhls.rs). Writes
# bench/out/llhls-node.json (LLHLS_RESULTS) and the section "## LL-HLS viewers one node
# holds" of docs/benchmarks.md (LLHLS_DOCS; LLHLS_DOCS= skips it).
#
# Usage: bench/llhls-node.sh [RUNS]   (default 5)
# Environment: START=200 STEP=200 GROWTH=1.25 MAX_VIEWERS=4000, and the rest in
# bench/llhls-common.sh (the driver's defaults).
#
# Smoke run (one run, a few viewers, nothing written into the docs):
#   START=2 STEP=2 MAX_VIEWERS=4 STEP_SECS=5 JOIN_SECS=1 LLHLS_DOCS= \
#   LLHLS_RESULTS=/tmp/llhls-node.json bench/llhls-node.sh 1
set -euo pipefail
ROW=node
source "$(dirname "$0")/llhls-common.sh"
