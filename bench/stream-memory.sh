#!/usr/bin/env bash
# Memory per live stream (docs/benchmarks.md): the RSS a broadcast node adds for each live
# stream, against the floor, the bytes of the window it lists.
#
# The roles one per process (Mosquitto, `sealcast ingest`, `sealcast broadcast` with
# NODE_WORKERS tokio workers, the node under test), live streams published with `sealcast
# source` at real-time pace and added one by one; after each, once every rung lists a full
# window and has slid on by GRACE+1 segments, the node's VmRSS, RssAnon, RssFile and Pss and
# the floor (every segment, part and init segment its playlists list) are sampled every
# 0.5 s for SAMPLE_SECONDS; RSS(0) before the first stream. Fresh processes every run.
# The driver runs it whole: `sealcast-bench run stream-memory`
# (bench/viewers/src/benches/stream_memory.rs says how, and why the cheap ladder).
#
# Figures, per run, median and min–max over RUNS: added RSS per stream at k = STREAMS; the
# floor per stream; ratio = added RSS / floor (goal ≤ 1.3), also against the unique bytes
# and against what the node serves; the marginal cost (least-squares slope of RSS over
# k = 1..STREAMS against the floor's slope).
#
# Writes bench/out/stream-memory.json (STREAM_MEMORY_RESULTS moves it) and the section
# "## Memory per live stream (bench/stream-memory.sh)" in docs/benchmarks.md
# (STREAM_MEMORY_DOCS=FILE writes it there instead, STREAM_MEMORY_DOCS= skips it), with
# bench/stream-memory-notes.md (where the memory goes, from a profile) when it exists
# (`sealcast-bench report stream-memory`).
#
# Usage: bench/stream-memory.sh [RUNS [STREAMS]]   (default 5 runs of 3 streams, about 8 minutes)
# Environment:
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`
#   SEALCAST_BENCH=path the driver (default: the one beside SEALCAST_BIN)
#   LADDER=cheap|default   the default ladder's shape at a quarter of the pixels, or the
#     product's defaults and a 720p source (for a machine with the cores for it)
#   SAMPLE_SECONDS=4   how long each point is sampled
#   NODE_WORKERS=1     tokio worker threads of the node
#   NODE_PREFIX="..."  words put before the node's command, for experiments and profiles
#     (e.g. "env MIMALLOC_PURGE_DELAY=0", or "valgrind --tool=massif --pages-as-heap=yes
#     --massif-out-file=/tmp/node.massif"); the figures then describe that, not the product.
#     The prefix must exec the node in its own process (env and valgrind do; heaptrack's
#     script forks, so attach it with `heaptrack -p PID` instead)
#
# Smoke run (one run of one stream, nothing written into the docs):
#   SAMPLE_SECONDS=2 STREAM_MEMORY_DOCS= STREAM_MEMORY_RESULTS=/tmp/stream-memory.json \
#   bench/stream-memory.sh 1 1
set -euo pipefail
# Relative paths are relative to where the script was started.
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
[ -z "${STREAM_MEMORY_RESULTS:-}" ] || export STREAM_MEMORY_RESULTS="$(realpath -m "$STREAM_MEMORY_RESULTS")"
[ -z "${STREAM_MEMORY_DOCS:-}" ] || STREAM_MEMORY_DOCS="$(realpath -m "$STREAM_MEMORY_DOCS")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install stream-memory mosquitto curl
bench_binary
bench_driver
bench_report_docs "${STREAM_MEMORY_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run stream-memory "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
