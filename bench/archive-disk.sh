#!/usr/bin/env bash
# Issue 49: disk per recorded hour, and where it is. A fresh `sealcast up` with NODES
# broadcast nodes and the default ladder's shape (the source rung, 720p, 480p and 360p
# x264, CMAF, 2 s segments, 0.333 s parts) records a 720p30 `sealcast source` (3000 kb/s)
# for SECONDS into its local archive; then, once the recording is listed and the spool has
# drained, `du` gives the archive's bytes, the spool's and every other node directory's.
# Per recorded hour is the archive's bytes over the recording's duration; before issue 49
# every node kept its own copy, NODES times that. The driver runs it whole:
# `sealcast-bench run archive-disk` (bench/viewers/src/benches/archive_disk.rs says how).
# Writes bench/out/archive-disk.json and a section in docs/benchmarks.md
# (ARCHIVE_DISK_DOCS= skips it; `sealcast-bench sample archive-recording`, `sample
# archive-disk` and `report archive-disk`).
# SEALCAST_BIN picks the binary (else the release build), SEALCAST_BENCH the driver (else
# the release build's).
#
# Usage: bench/archive-disk.sh [SECONDS] [NODES]   (defaults 120 and 3)
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install archive-disk curl
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_driver
bench_report_docs "${ARCHIVE_DISK_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run archive-disk "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
