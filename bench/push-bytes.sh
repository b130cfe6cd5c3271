#!/usr/bin/env bash
# Issue 46 item 2: each fragment crosses from ingest to edge once. With LL-HLS parts, the
# ingest pushes a segment to a node that took all its parts without its bytes (the node
# joins the parts); `SEALCAST_PUSH_WHOLE_SEGMENTS=1` makes it push every segment whole, as
# before. Both in one run, ROUNDS times interleaved (assembled, whole, ...): each time a
# fresh `sealcast up` (one ingest, two broadcast nodes, the source rung only, CMAF, 2 s
# segments, 0.333 s parts) with `sealcast source` publishing 720p30 at 3000 kb/s over
# RTMP, a 10 s settle, then SECONDS measured: ingest→edge bytes, the segments' publication
# latency on node 1, gaps. The driver runs it whole: `sealcast-bench run push-bytes`
# (bench/viewers/src/benches/push_bytes.rs says how).
# Writes bench/out/push-bytes.json and a section in docs/benchmarks.md
# (PUSH_BYTES_DOCS= skips it; `sealcast-bench report push-bytes`). SEALCAST_BIN picks the
# binary (else the release build), SEALCAST_BENCH the driver.
#
# Usage: bench/push-bytes.sh [SECONDS] [ROUNDS]   (defaults 60 and 2)
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install push-bytes curl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_driver
bench_report_docs "${PUSH_BYTES_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run push-bytes "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
