#!/usr/bin/env bash
# Ladder CPU for a 1080p60 HEVC and a 1080p60 AV1 source on this machine (issue 32): does
# the ingest keep real time with the default ladder (src passed through, 720p, 480p and
# 360p encoded by x264), or shed rungs visibly (sealcast_ingest_rungs_shed, the
# dashboard's realtime factor) without stalling the stream?
#
# FFmpeg 9 (PyPI's imageio-ffmpeg, as scripts/setup.sh test installs it) first encodes
# SECONDS of a 1080p60 test pattern once per codec, ahead of time; then, for each codec in
# turn, publishes that file in real time over Enhanced RTMP to `sealcast up` (default
# ladder, 2 broadcast nodes), sampling every 2 s the CPU of `sealcast up` and each rung's
# realtime factor, the lag and the rungs shed; at the end the src rung's segments must
# cover the publish without a gap. The driver runs it whole: `sealcast-bench run
# ladder-codecs` (bench/viewers/src/benches/ladder_codecs.rs says how).
#
# Writes bench/out/ladder-codecs.json and its section of docs/benchmarks.md
# (LADDER_CODECS_DOCS= skips it; `sealcast-bench report ladder-codecs`).
#
# Usage: bench/ladder-codecs.sh [SECONDS] [CODECS]   (defaults 60 and "hevc av1")
set -euo pipefail
[ -z "${SEALCAST_BIN:-}" ] || SEALCAST_BIN="$(realpath -m "$SEALCAST_BIN")"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh test

source bench/lib.sh
bench_install ladder-codecs curl
bench_binary
bench_driver
FFMPEG9="${SEALCAST_TEST_FFMPEG9:-$("${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
[ -x "$FFMPEG9" ] || { echo "ladder-codecs: no FFmpeg 9 (run scripts/setup.sh test)" >&2; exit 1; }
bench_report_docs "${LADDER_CODECS_DOCS-docs/benchmarks.md}"
exec "$DRIVER" run ladder-codecs "${REPORT_DOCS[@]}" --bin "$BIN" --ffmpeg9 "$FFMPEG9" "$@"
