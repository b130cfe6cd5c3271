#!/usr/bin/env bash
# Glass-to-glass latency per ingest protocol (issue 32), LL-HLS in Chromium: RTMP (the
# reference), SRT and WHIP into one `sealcast up` cluster, measured in turn, ROUNDS times
# interleaved (rtmp, srt, whip, rtmp, ...).
#
# PROTOCOLS="source rtmp srt whip" adds `sealcast source` publishing over RTMP itself (no pipe,
# no ffmpeg): bench/latency.sh's publisher, the reference for the others' extra delay.
# "rtmp-bframes" is the RTMP publish with the source encoding as OBS does by default
# (x264 `veryfast` with B-frames and a lookahead) instead of for low latency: what the
# publisher's encoder adds.
#
# Each publish: `sealcast source` draws its pattern with the machine-readable clock stamp
# (720p30, x264 with a keyframe every 2 s, AAC; `--low-latency`: x264's zerolatency tune,
# no B-frames and no lookahead, as a streamer who wants low latency sets OBS) into a pipe, and
#   - rtmp: Debian's ffmpeg copies it unchanged (`-c copy -f flv`) to the ingest's RTMP port;
#   - srt: Debian's ffmpeg (5.1, libsrt 1.5) copies it unchanged into MPEG-TS over SRT
#     (`streamid=#!::r=live/KEY,m=publish`, SRT latency 120 ms) to the ingest's SRT port;
#   - whip: FFmpeg 9 (PyPI's imageio-ffmpeg, as scripts/setup.sh installs it) re-encodes it
#     the way a WebRTC encoder sends (x264 zerolatency, no B-frames, a keyframe every 2 s,
#     Opus) and publishes it with its `whip` muxer (`-whip_flags dtls_active`) through the
#     load balancer. The re-encode adds FFmpeg's own encoding delay (the stamp is in the
#     picture, so what is measured is still camera-to-screen for this publisher).
# Each protocol publishes a stream of its own; bench/viewers' `sealcast-glass` opens the
# player through the load balancer and samples the stamped latency every 250 ms for
# SECONDS after a 10 s settle; the publisher then stops. p50/p90/max over every sample of a
# protocol, and the longest stall. Goal: p50 <= 1.5 s for SRT and WHIP.
#
# The ladder is the source rung only by default (LADDER=src), as in bench/latency.sh: two
# cores cannot run three x264 rungs, a publisher's encoder and Chromium in real time.
# LADDER=full uses the default ladder.
#
# MoQ mode (issue 48): TRANSPORTS="moq hls" plays every publish both ways, interleaved
# (a publish per run): over Media over QUIC (`?transport=moq`, the player's WebTransport
# to the moq-relay `sealcast up --moq-run-relay` runs, every object verified) and over
# LL-HLS (`?transport=hls`) beside it in the same run. PART sets the part (and so the MoQ
# object) duration, 0.333 s by default. Goal over MoQ: p50 <= 0.5 s, no stall.
#
# Writes bench/out/ingest-latency.json (bench/out/moq-latency.json in MoQ mode) and a
# section in docs/benchmarks.md (`sealcast-bench report ingest-latency`).
#
# Usage: bench/ingest-latency.sh [SECONDS] [ROUNDS]   (defaults 60 and 3)
# Environment: SEALCAST_BIN (sealcast-glass beside it; else the release build),
# SEALCAST_BENCH (the doc driver; else the release build's),
# PROTOCOLS="rtmp srt whip" (a subset to measure fewer; "source" adds
# `sealcast source` publishing over RTMP itself, without the pipe and ffmpeg);
# TRANSPORTS="moq hls" (MoQ mode; default "hls"); PART (seconds).
set -euo pipefail
GIVEN_BIN="${SEALCAST_BIN:+$(realpath "$SEALCAST_BIN")}"
GIVEN_BENCH="${SEALCAST_BENCH:+$(realpath "$SEALCAST_BENCH")}"
cd "$(dirname "$0")/.."
source scripts/setup.sh test
SECS="${1:-60}"
ROUNDS="${2:-3}"
LADDER="${LADDER:-src}"
PROTOCOLS="${PROTOCOLS:-rtmp rtmp-bframes srt whip}"
TRANSPORTS="${TRANSPORTS:-hls}"
PART="${PART:-0.333}"

source bench/lib.sh
bench_clear_env
bench_install ingest-latency chromium chromium-driver curl ffmpeg
bench_workdir
SEALCAST_BIN="$GIVEN_BIN" bench_binary # the release build unless SEALCAST_BIN names one
bench_tool sealcast-glass; GLASS="$TOOL"
bench_driver
FFMPEG9="${SEALCAST_TEST_FFMPEG9:-$("${SEALCAST_KUBERNETES_TOOLS:-$HOME/.cache/sealcast/kubernetes-tools}/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
[ -x "$FFMPEG9" ] || { echo "ingest-latency: no FFmpeg 9 (run scripts/setup.sh test)" >&2; exit 1; }

dir="$WORK/cluster"
mkdir -p "$dir"
bench_latency_config "$PART" "$LADDER" > "$dir/sealcast.toml"
moq=()
if [[ " $TRANSPORTS " == *" moq "* ]]; then
  # The release build bench/moq-cost.sh makes, when there is one, else the debug build
  # scripts/setup.sh test makes for the tests; run by `up` itself.
  relay="$HOME/.cache/sealcast/moq-relay-release/bin/moq-relay"
  [ -x "$relay" ] || relay="${SEALCAST_MOQ_RELAY_BIN:-${SEALCAST_MOQ_RELAY_ROOT:-$HOME/.cache/sealcast/moq-relay}/bin/moq-relay}"
  case "$relay" in *-release/*) RELAY_BUILD=release ;; *) RELAY_BUILD=debug ;; esac
  export RELAY_BUILD
  [ -x "$relay" ] || { echo "ingest-latency: no moq-relay at $relay (run scripts/setup.sh test)" >&2; exit 1; }
  moq=(--moq-run-relay "$relay" --moq-relay-listen "127.0.0.1:$(free_port)")
fi
"$BIN" up --config "$dir/sealcast.toml" --data-dir "$dir/data" --certs-dir "$dir/certs" \
  --broadcast 2 --rtmp-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --srt-listen 127.0.0.1:0 --webrtc-listen 127.0.0.1:0 "${moq[@]}" \
  > "$dir/up.out" 2> "$dir/up.err" &
PIDS+=("$!")
for _ in $(seq 1 600); do grep -q '^broadcast2 ' "$dir/up.out" && break; sleep 0.1; done
grep -q '^broadcast2 ' "$dir/up.out" || { echo "ingest-latency: sealcast up did not start" >&2; tail "$dir/up.err" >&2; exit 1; }
ORIGIN="$(awk '$1 == "player" {print $2}' "$dir/up.out" | head -1)"
ORIGIN="${ORIGIN%/}"
RTMP="$(awk '$1 == "obs-server" {print $2}' "$dir/up.out" | head -1)"
SRT="$(awk '$1 == "srt-server" {print $2}' "$dir/up.out" | head -1)"
[ -n "$SRT" ] || { echo "ingest-latency: sealcast up printed no srt-server line" >&2; exit 1; }
# One stream per protocol; the keys stay in this run's files (never on a command line
# of ours that outlives the run, never in a log of ours).
declare -A KEYS
for proto in $PROTOCOLS; do
  KEYS[$proto]="$("$BIN" streams add "lat$proto" --data-dir "$dir/data" 2>/dev/null | tail -1)"
  [ -n "${KEYS[$proto]}" ] || { echo "ingest-latency: no key for lat$proto" >&2; exit 1; }
done

# publish PROTO: the source into a pipe and PROTO's publisher from it, in the background
# (their pids in PUBLISHING).
publish() {
  local proto="$1" key="${KEYS[$1]}" fifo="$WORK/source-$1.flv" encoder=--low-latency
  PUBLISHING=()
  [ "$proto" = rtmp-bframes ] && encoder=
  if [ "$proto" = source ]; then
    # Our own publisher straight over RTMP, no pipe and no ffmpeg (bench/latency.sh's).
    "$BIN" source --url "$RTMP/$key" --size 1280x720 --fps 30 --duration $((SECS + 60)) $encoder \
      > "$WORK/publisher-$proto.log" 2>&1 &
    PUBLISHING+=("$!")
    PIDS+=("${PUBLISHING[@]}")
    return
  fi
  rm -f "$fifo"; mkfifo "$fifo"
  "$BIN" source --output "$fifo" --size 1280x720 --fps 30 --duration $((SECS + 60)) $encoder \
    > "$WORK/source-$proto.log" 2>&1 &
  PUBLISHING+=("$!")
  case "$proto" in
    rtmp | rtmp-bframes)
      ffmpeg -hide_banner -loglevel warning -nostdin -f flv -i "$fifo" -c copy -f flv \
        "$RTMP/$key" > "$WORK/publisher-$proto.log" 2>&1 & ;;
    srt)
      ffmpeg -hide_banner -loglevel warning -nostdin -f flv -i "$fifo" -c copy \
        -f mpegts "$SRT?streamid=#!::r=live/$key,m=publish&latency=120000&pkt_size=1316" \
        > "$WORK/publisher-$proto.log" 2>&1 & ;;
    whip)
      SSL_CERT_FILE="$dir/certs/ca.pem" "$FFMPEG9" -hide_banner -loglevel warning -nostdin \
        -f flv -i "$fifo" \
        -c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline -bf 0 \
        -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 2500k \
        -c:a libopus -ac 2 -ar 48000 -b:a 96k \
        -whip_flags dtls_active -f whip -authorization "$key" "$ORIGIN/whip/lat$proto" \
        > "$WORK/publisher-$proto.log" 2>&1 & ;;
  esac
  PUBLISHING+=("$!")
  PIDS+=("${PUBLISHING[@]}")
}

: > "$WORK/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  for proto in $PROTOCOLS; do
   for transport in $TRANSPORTS; do
    echo "ingest-latency: round $round/$ROUNDS, $proto over $transport (${SECS}s)" >&2
    publish "$proto"
    # The stream's media playlist live again: from the second round on, the playlists of
    # the round before stay served, ended, until the new session replaces them, and a
    # player opened on those would play an ended stream.
    media="$ORIGIN/live/lat$proto/src/index.m3u8"
    if bench_wait_for 60 bash -c 'p="$(curl -sf --cacert "$1" "$2")" && grep -q PRELOAD-HINT <<< "$p" && ! grep -q ENDLIST <<< "$p"' \
      _ "$dir/certs/ca.pem" "$media" &&
      RUST_BACKTRACE=0 "$GLASS" "$ORIGIN" "lat$proto" --seconds "$SECS" --transport "$transport" > "$WORK/run.json" 2> "$WORK/glass.err"; then
      :
    else
      why="$(head -c 600 "$WORK/glass.err" 2>/dev/null || true)"
      [ -n "$why" ] || why="the $proto stream never came out: $(tail -n 3 "$WORK/publisher-$proto.log" | tr '\n' ' ')"
      echo "ingest-latency: $proto failed: $why" >&2
      "$DRIVER" sample glass-failed "$why" > "$WORK/run.json"
    fi
    "$DRIVER" sample tagged "$WORK/run.json" --int round="$round" --str protocol="$proto" \
      --str transport="$transport" >> "$WORK/runs.jsonl"
    kill "${PUBLISHING[@]}" 2>/dev/null || true
    wait "${PUBLISHING[@]}" 2>/dev/null || true
   done
  done
done

"$DRIVER" report ingest-latency "$WORK/runs.jsonl" --seconds "$SECS" --rounds "$ROUNDS" \
  --ladder "$LADDER" --protocols "$PROTOCOLS" --transports "$TRANSPORTS" --part "$PART" \
  --relay-build "${RELAY_BUILD:-debug}"
