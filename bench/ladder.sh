#!/usr/bin/env bash
# Benchmark (docs/benchmarks.md): the ingest ladder transcoder vs the ffmpeg CLI.
#
# The same 60 s OBS-like 720p30 FLV (H.264 with B-frames, 2 s GOP, AAC) goes through
# `sealcast ladder` and through `ffmpeg -filter_complex split/scale` with the same settings
# (CMAF, 2 s segments, a passthrough `src` rung, audio copied; x264 `veryfast`, 2 s closed
# GOPs, the same VBV per rung, bicubic scaling; by default the shipping ladder with LL-HLS
# parts, ffmpeg given the same x264 parameters), run as fast as possible, interleaved
# A B A B. Checked from the first run's outputs: each encoded rung's PSNR within 0.1 dB of
# ffmpeg's and its bitrate within 5 %, else the script says so and fails. Reports
# CPU-seconds and wall-time ratios (ffmpeg / ours, > 1 means we are ahead), with an A/A
# ratio of ffmpeg against itself as the noise floor. The driver runs it whole:
# `sealcast-bench run ladder` (bench/viewers/src/benches/ladder.rs says how). Writes
# bench/out/ladder.json and its section of docs/benchmarks.md (LADDER_DOCS= skips it;
# `sealcast-bench report ladder`).
#
# Usage: bench/ladder.sh [RUNS]   (default 5)
# Environment: LADDER_PARTS=0   the ladder without LL-HLS parts (and x264 defaults on both sides);
#   SEALCAST_BIN=path   a prebuilt sealcast binary instead of `cargo build --release`;
#   SEALCAST_BENCH=path the report's sealcast-bench (default: the one beside SEALCAST_BIN)
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh

source bench/lib.sh
bench_install ladder ffmpeg
bench_binary
bench_driver
bench_report_docs "${LADDER_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run ladder "${REPORT_DOCS[@]}" --bin "$BIN" "$@"
