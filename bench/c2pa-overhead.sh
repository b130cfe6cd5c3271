#!/usr/bin/env bash
# Issue 47: what C2PA live video (docs/provenance.md) costs a viewer in bytes, beside what
# our own statements cost. One `sealcast up` (one ingest, one broadcast node, the default
# ladder: src, 720p, 480p, 360p; CMAF, 2 s segments, 0.333 s parts) with `sealcast source`
# publishing 720p30 at 3000 kb/s over RTMP; after a 10 s settle, a client follows every
# rung's media playlist for SECONDS and fetches each new part and segment once with its
# statement (`.sig`), and each init segment: per rung, the C2PA bytes a parts viewer and a
# segments viewer fetch, the statements' share, the init segment's size and its C2PA box.
# The driver runs it whole: `sealcast-bench run c2pa-overhead`
# (bench/viewers/src/benches/c2pa_overhead.rs says how).
# Writes bench/out/c2pa-overhead.json and a section in docs/benchmarks.md
# (C2PA_OVERHEAD_DOCS= skips it; `sealcast-bench sample c2pa-overhead` and `report
# c2pa-overhead`). SEALCAST_BIN picks the binary (else the release build), SEALCAST_BENCH
# the driver.
#
# Usage: bench/c2pa-overhead.sh [SECONDS]   (default 30)
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install c2pa-overhead curl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_driver
bench_report_docs "${C2PA_OVERHEAD_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run c2pa-overhead "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
