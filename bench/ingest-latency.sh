#!/usr/bin/env bash
# Glass-to-glass latency per ingest protocol (issue 32), LL-HLS in Chromium: RTMP (the
# reference), SRT and WHIP into one `sealcast up` cluster, measured in turn, ROUNDS times
# interleaved (rtmp, srt, whip, rtmp, ...). Each protocol publishes `sealcast source`'s
# stamped 720p30 pattern through its publisher (ffmpeg copying it for RTMP and SRT, FFmpeg
# 9 re-encoding it for WHIP); bench/viewers' `sealcast-glass` opens the player through the
# load balancer and samples the stamped latency every 250 ms for SECONDS after a 10 s
# settle. Goal: p50 <= 1.5 s for SRT and WHIP. "source" in PROTOCOLS adds `sealcast source`
# publishing over RTMP itself; "rtmp-bframes" is RTMP with OBS's default encoding. MoQ mode
# (issue 48): TRANSPORTS="moq hls" plays every publish over Media over QUIC and over
# LL-HLS, interleaved; goal over MoQ: p50 <= 0.5 s, no stall. The driver runs it whole:
# `sealcast-bench run ingest-latency` (bench/viewers/src/benches/ingest_latency.rs says how).
#
# The ladder is the source rung only by default (LADDER=src), as in bench/latency.sh: two
# cores cannot run three x264 rungs, a publisher's encoder and Chromium in real time.
# LADDER=full uses the default ladder.
#
# Writes bench/out/ingest-latency.json (bench/out/moq-latency.json in MoQ mode) and a
# section in docs/benchmarks.md.
#
# Usage: bench/ingest-latency.sh [SECONDS] [ROUNDS]   (defaults 60 and 3; `--no-doc`
# prints the section only, `--results FILE` puts the raw results there)
# Environment: SEALCAST_BIN (sealcast-glass beside it; else the release build),
# SEALCAST_BENCH (the doc driver; else the release build's),
# PROTOCOLS="rtmp rtmp-bframes srt whip" (a subset to measure fewer; "source" adds
# `sealcast source` publishing over RTMP itself, without the pipe and ffmpeg);
# TRANSPORTS="moq hls" (MoQ mode; default "hls"); PART (seconds, 0.333); LADDER.
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh test

source bench/lib.sh
bench_clear_env
bench_install ingest-latency chromium chromium-driver curl ffmpeg
SEALCAST_BIN="$GIVEN_BIN" bench_binary # the release build unless SEALCAST_BIN names one
bench_tool sealcast-glass; GLASS="$TOOL"
bench_driver
FFMPEG9="${SEALCAST_TEST_FFMPEG9:-$("${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
[ -x "$FFMPEG9" ] || { echo "ingest-latency: no FFmpeg 9 (run scripts/setup.sh test)" >&2; exit 1; }
moq=()
if [[ " ${TRANSPORTS:-hls} " == *" moq "* ]]; then
  # The release build bench/moq-cost.sh makes, when there is one, else the debug build
  # scripts/setup.sh test makes for the tests; run by `up` itself.
  relay="$HOME/.cache/sealcast/moq-relay-release/bin/moq-relay"
  [ -x "$relay" ] || relay="${SEALCAST_MOQ_RELAY_BIN:-${SEALCAST_MOQ_RELAY_ROOT:-$HOME/.cache/sealcast/moq-relay}/bin/moq-relay}"
  case "$relay" in *-release/*) build=release ;; *) build=debug ;; esac
  [ -x "$relay" ] || { echo "ingest-latency: no moq-relay at $relay (run scripts/setup.sh test)" >&2; exit 1; }
  moq=(--relay-bin "$relay" --relay-build "$build")
fi
exec "$DRIVER" run ingest-latency --bin "$BIN" --glass-bin "$GLASS" --ffmpeg9 "$FFMPEG9" "${moq[@]}" "$@"
