#!/usr/bin/env bash
# Issue 49's goal: seeking back in a live stream plays within 1 s in Chromium. A fresh
# `sealcast up` (one broadcast node, the source rung only, CMAF, 2 s segments, a 30-minute
# time-shift window) gets an 854x480 30 fps `sealcast source` over RTMP; the peer gets the
# same pattern from a second `sealcast source`, packaged by FFmpeg's hls muxer (2 s fMP4
# segments, a 30-minute sliding playlist) and served as files by nginx with a page running
# the same hls.js (bench/peers/dvr/index.html). Once both windows hold BACK seconds and a
# margin, bench/viewers' `sealcast-dvr-seek` plays each live in a fresh headless Chromium
# and goes BACK seconds behind live, ROUNDS times interleaved, timing from the request to
# playing media. Ours verifies every fragment it plays; the peer checks nothing. The driver
# runs it whole: `sealcast-bench run dvr-seek` (bench/viewers/src/benches/dvr_seek.rs).
#
# Writes bench/out/dvr-seek.json and a section in docs/benchmarks.md (DVR_SEEK_DOCS= skips
# it). SEALCAST_BIN picks the binary (else the release build; `sealcast-dvr-seek` is taken
# from beside it), SEALCAST_BENCH the doc driver.
#
# Usage: bench/dvr-seek.sh [BACK] [ROUNDS]   (defaults 600 and 6)
set -euo pipefail
cd "$(dirname "$0")/.."
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
source bench/lib.sh
bench_clear_env
bench_install dvr-seek chromium chromium-driver curl ffmpeg nginx
SEALCAST_BIN="$GIVEN_BIN" bench_binary
bench_tool sealcast-dvr-seek
SEEK="$TOOL"
bench_driver
bench_report_docs "${DVR_SEEK_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run dvr-seek "${REPORT_DOCS[@]}" --bin "$BIN" --seek-bin "$SEEK" "$@"
