#!/usr/bin/env bash
# What the ingest's low-latency x264 settings cost in quality (issue 17): the same source
# encoded at the same bitrate with the settings of an encoded rung without parts
# (`veryfast`, frame threads, B-frames and lookahead as the preset has them) and with parts
# (the same plus `bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1`, as
# `ingest::transcode` opens x264 when parts are on). PSNR and SSIM against the source, the
# bitrate reached, and the encode speed, for each of the ladder's three encoded rungs, on a
# 30 s 720p30 source with motion and detail (ffmpeg's testsrc2 with noise). The x264 here
# is the same library the ingest links. The driver runs it whole: `sealcast-bench run
# ll-quality` (bench/viewers/src/benches/ll_quality.rs says how).
#
# Writes bench/out/ll-quality.json and a section in docs/benchmarks.md (LL_QUALITY_DOCS=
# skips it; `sealcast-bench report ll-quality`).
#
# Usage: bench/ll-quality.sh [SECONDS]   (default 30)
# Environment: SEALCAST_BENCH (else the release build's).
set -euo pipefail
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_install ll-quality ffmpeg
bench_driver
bench_report_docs "${LL_QUALITY_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run ll-quality "${REPORT_DOCS[@]}" "$@"
